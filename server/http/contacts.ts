import { AppError } from '../../shared/protocol/errors.js';
import { ContactsPatchRequest, ContactsPutRequest } from '../../shared/protocol/contacts.js';
import type { HubContext } from '../HubContext.js';
import type { AddressBook } from '../contacts/AddressBook.js';
import type { Discovery } from '../contacts/Discovery.js';
import type { RateLimiter } from '../identity/RateLimiter.js';
import { keys } from '../keys.js';
import { authenticate, type Principal } from './auth.js';
import { parse } from './errors.js';

export interface ContactsRouteDeps {
  discovery: Discovery;
  addressBook: AddressBook;
  limiter: RateLimiter;
}

/** `/v1/contacts`: replace, patch and delete the address book. */
export function registerContactsRoutes(ctx: HubContext, deps: ContactsRouteDeps): void {
  const { app } = ctx;
  const bodyLimit = ctx.config.CONTACTS_BODY_LIMIT;
  const perHour = { limit: ctx.config.CONTACTS_REQUESTS_PER_HOUR, windowSeconds: 3600, kind: 'fixed' as const };

  /**
   * Takes one unit of the account's hourly budget (uploads are costly to read
   * and match). Called once the body passed its schema, so a refused body
   * changes nothing; a request refused later (quota, size) still counts.
   */
  const admit = async (me: Principal): Promise<void> => {
    const decision = await deps.limiter.consume(keys.userQuota(me.userId, 'contacts'), perHour);
    if (!decision.allowed) {
      throw new AppError('RATE_LIMITED', 'Too many address-book requests; try again later', {
        retryAfter: decision.retryAfter, details: { limit: 'contacts' },
      });
    }
  };

  const owner = async (userId: string) => {
    const profile = await ctx.accounts.get(userId);
    if (!profile) throw new AppError('ACCOUNT_DELETED');
    return { userId, phone: profile.phone };
  };

  app.put('/v1/contacts', { bodyLimit }, async (request) => {
    const me = await authenticate(ctx, request);
    const body = parse(ContactsPutRequest, request.body);
    await admit(me);
    return deps.discovery.replace(await owner(me.userId), body.entries);
  });

  app.patch('/v1/contacts', { bodyLimit }, async (request) => {
    const me = await authenticate(ctx, request);
    const body = parse(ContactsPatchRequest, request.body);
    await admit(me);
    return deps.discovery.patch(await owner(me.userId), body);
  });

  app.delete('/v1/contacts', async (request) => {
    const me = await authenticate(ctx, request);
    await admit(me);
    await deps.addressBook.deleteAll(me.userId);
    return { deleted: true as const };
  });
}
