import { AppError } from '../../shared/protocol/errors.js';
import { MePatchRequest } from '../../shared/protocol/identity.js';
import type { HubContext } from '../HubContext.js';
import type { Discovery } from '../contacts/Discovery.js';
import type { AddressBook } from '../contacts/AddressBook.js';
import type { Devices } from '../identity/Devices.js';
import type { Erasure } from '../identity/Erasure.js';
import { authenticate, MINIMUM_AGE, publicProfile } from './auth.js';
import { parse } from './errors.js';

export interface MeRouteDeps {
  devices: Devices;
  erasure: Erasure;
  addressBook: AddressBook;
  discovery: Discovery;
}

/** `/v1/me`: the profile, its changes, erasure and export. */
export function registerMeRoutes(ctx: HubContext, deps: MeRouteDeps): void {
  const { app } = ctx;

  const loadProfile = async (userId: string) => {
    const profile = await ctx.accounts.get(userId);
    if (!profile) throw new AppError('ACCOUNT_DELETED');
    return profile;
  };

  app.get('/v1/me', async (request) => {
    const me = await authenticate(ctx, request);
    return { user: publicProfile(await loadProfile(me.userId)), sessionId: me.sessionId, deviceId: me.deviceId };
  });

  app.patch('/v1/me', async (request) => {
    const me = await authenticate(ctx, request);
    const patch = parse(MePatchRequest, request.body);
    await loadProfile(me.userId);
    if (typeof patch.age === 'number' && patch.age < MINIMUM_AGE) {
      await deps.erasure.erase(me.userId, 'under_minimum_age');
      throw new AppError('UNDER_MINIMUM_AGE', 'Accounts are not available to children under 13; the account was erased');
    }
    const profile = await ctx.accounts.update(me.userId, patch);
    if (!profile) throw new AppError('ACCOUNT_DELETED');
    return { user: publicProfile(profile), sessionId: me.sessionId, deviceId: me.deviceId };
  });

  app.delete('/v1/me', async (request) => {
    const me = await authenticate(ctx, request);
    await deps.erasure.erase(me.userId, 'user_request');
    return { deleted: true as const };
  });

  app.get('/v1/me/export', async (request) => {
    const me = await authenticate(ctx, request);
    const [profile, devices, sessions, addressBook, used] = await Promise.all([
      loadProfile(me.userId),
      deps.devices.list(me.userId),
      ctx.sessions.list(me.userId),
      deps.addressBook.summary(me.userId),
      deps.discovery.usedToday(me.userId),
    ]);
    return {
      exportedAt: Date.now(),
      user: publicProfile(profile),
      devices,
      sessions: sessions.map((s) => ({ ...s, current: s.sessionId === me.sessionId })),
      addressBook,
      discovery: { newNumbersCheckedToday: used, dailyLimit: ctx.config.DISCOVERY_NEW_NUMBERS_PER_DAY },
    };
  });
}
