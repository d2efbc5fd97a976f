import type { HubContext } from '../HubContext.js';
import type { HubEventMap } from '../HubEvents.js';
import { AddressBook } from '../contacts/AddressBook.js';
import { Discovery } from '../contacts/Discovery.js';
import { registerAuthRoutes } from '../http/auth.js';
import { registerContactsRoutes } from '../http/contacts.js';
import { registerDeviceRoutes } from '../http/devices.js';
import { registerMeRoutes } from '../http/me.js';
import { createCodeDelivery } from './createCodeDelivery.js';
import { Devices } from './Devices.js';
import { Erasure } from './Erasure.js';
import { OtpService } from './OtpService.js';
import { PhoneNumbers } from './PhoneNumbers.js';
import { RateLimiter } from './RateLimiter.js';

/**
 * Identity and contacts: sign-up by one-time code, sessions with rotating
 * refresh tokens, profile, devices, export and erasure, the address book and
 * contact discovery. Throws at startup when the code provider is not allowed
 * (the `log` provider in production) or not configured.
 */
export function registerIdentity(ctx: HubContext): void {
  const c = ctx.config;
  const log = ctx.log.child({ sub: 'identity' });

  const delivery = createCodeDelivery(c, log.child({ sub: 'otp-delivery' }));
  ctx.onClose(() => delivery.close());

  const numbers = new PhoneNumbers({ allowedCountries: c.PHONE_COUNTRIES, prefixDigits: c.OTP_PREFIX_DIGITS });
  const limiter = new RateLimiter(ctx.redis);
  const otp = new OtpService({ redis: ctx.redis, hasher: ctx.phoneHasher, numbers, delivery, limiter, log }, {
    ttlSeconds: c.OTP_TTL_S,
    maxAttempts: c.OTP_MAX_ATTEMPTS,
    resendCooldownSeconds: c.OTP_RESEND_COOLDOWN_S,
    perNumberPerHour: c.OTP_PER_NUMBER_PER_HOUR,
    perIpPerHour: c.OTP_PER_IP_PER_HOUR,
    perPrefixPerHour: c.OTP_PER_PREFIX_PER_HOUR,
    verifyPerIpPerHour: c.OTP_VERIFY_PER_IP_PER_HOUR,
  });
  const devices = new Devices(ctx.redis);
  const addressBook = new AddressBook(ctx.redis);
  const discovery = new Discovery(
    { redis: ctx.redis, book: addressBook, hasher: ctx.phoneHasher, limiter, io: ctx.io, log: log.child({ sub: 'contacts' }) },
    { newNumbersPerDay: c.DISCOVERY_NEW_NUMBERS_PER_DAY, maxEntries: c.CONTACTS_MAX_ENTRIES, maxIdentifiers: c.CONTACTS_MAX_IDENTIFIERS },
  );
  const erasure = new Erasure({
    redis: ctx.redis, accounts: ctx.accounts, otp, addressBook, gateway: ctx.gateway, events: ctx.events, log,
    tombstoneTtlSeconds: c.ERASURE_TOMBSTONE_TTL_S,
  });

  // contact:joined for everyone holding the new number; the hub waits for these on close.
  const announcing = new Set<Promise<unknown>>();
  const onRegistered = (user: HubEventMap['user:registered'][0]) => {
    const p = discovery.announce(user)
      .catch((err: unknown) => log.error({ err, userId: user.userId }, 'contact:joined announcement failed'))
      .finally(() => announcing.delete(p));
    announcing.add(p);
  };
  ctx.events.on('user:registered', onRegistered);
  ctx.onClose(async () => {
    ctx.events.off('user:registered', onRegistered);
    await Promise.allSettled([...announcing]);
  });

  registerAuthRoutes(ctx, { otp, numbers, devices, erasure, limiter });
  registerMeRoutes(ctx, { devices, erasure, addressBook, discovery });
  registerDeviceRoutes(ctx, { devices });
  registerContactsRoutes(ctx, { discovery, addressBook, limiter });
}
