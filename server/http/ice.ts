import type { HubContext } from '../HubContext.js';
import type { IceServers } from '../calls/IceServers.js';
import { authenticate } from './auth.js';

/**
 * GET /v1/ice-servers: STUN servers and short-lived coturn REST credentials
 * for TURN, for a signed-in device (Bearer access token, session checked).
 * Call payloads carry the same list; this route is for clients that want
 * to pre-warm or refresh it.
 */
export function registerIceRoutes(ctx: HubContext, ice: IceServers): void {
  ctx.app.get('/v1/ice-servers', async (request, reply) => {
    await authenticate(ctx, request);
    // Credentials must not sit in shared caches.
    reply.header('Cache-Control', 'no-store');
    return { iceServers: ice.forClient(), ttl: ice.ttlSeconds };
  });
}
