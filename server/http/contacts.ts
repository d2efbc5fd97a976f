import { AppError } from '../../shared/protocol/errors.js';
import { ContactsPatchRequest, ContactsPutRequest } from '../../shared/protocol/contacts.js';
import type { HubContext } from '../HubContext.js';
import type { AddressBook } from '../contacts/AddressBook.js';
import type { Discovery } from '../contacts/Discovery.js';
import { authenticate } from './auth.js';
import { parse } from './errors.js';

/** `/v1/contacts`: replace, patch and delete the address book. */
export function registerContactsRoutes(ctx: HubContext, deps: { discovery: Discovery; addressBook: AddressBook }): void {
  const { app } = ctx;
  const bodyLimit = ctx.config.CONTACTS_BODY_LIMIT;

  const owner = async (userId: string) => {
    const profile = await ctx.accounts.get(userId);
    if (!profile) throw new AppError('ACCOUNT_DELETED');
    return { userId, phone: profile.phone };
  };

  app.put('/v1/contacts', { bodyLimit }, async (request) => {
    const me = await authenticate(ctx, request);
    const body = parse(ContactsPutRequest, request.body);
    return deps.discovery.replace(await owner(me.userId), body.entries);
  });

  app.patch('/v1/contacts', { bodyLimit }, async (request) => {
    const me = await authenticate(ctx, request);
    const body = parse(ContactsPatchRequest, request.body);
    return deps.discovery.patch(await owner(me.userId), body);
  });

  app.delete('/v1/contacts', async (request) => {
    const me = await authenticate(ctx, request);
    await deps.addressBook.deleteAll(me.userId);
    return { deleted: true as const };
  });
}
