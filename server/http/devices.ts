import { DeviceId } from '../../shared/protocol/common.js';
import { AppError } from '../../shared/protocol/errors.js';
import { DevicePutRequest } from '../../shared/protocol/identity.js';
import type { HubContext } from '../HubContext.js';
import type { Devices } from '../identity/Devices.js';
import { authenticate } from './auth.js';
import { parse } from './errors.js';

/** `PUT /v1/me/devices/:deviceId`: a device registers its platform and push tokens. */
export function registerDeviceRoutes(ctx: HubContext, deps: { devices: Devices }): void {
  ctx.app.put<{ Params: { deviceId: string } }>('/v1/me/devices/:deviceId', async (request) => {
    const me = await authenticate(ctx, request);
    const deviceId = parse(DeviceId, request.params.deviceId);
    const reg = parse(DevicePutRequest, request.body);
    // Push tokens route calls to a handset: only that handset may set them.
    if (deviceId !== me.deviceId) throw new AppError('FORBIDDEN', 'A device may only update its own registration');
    const device = await deps.devices.replace(me.userId, deviceId, reg);
    if (!device) throw new AppError('NOT_FOUND', 'No such device');
    return { device };
  });
}
