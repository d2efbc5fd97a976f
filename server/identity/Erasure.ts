import type { Redis } from 'ioredis';
import type { HubEvents } from '../HubEvents.js';
import type { Logger } from '../../shared/runtime/log.js';
import { keys } from '../keys.js';
import { rooms, type SocketGateway } from '../socket/SocketGateway.js';
import type { Accounts } from './Accounts.js';
import type { OtpService } from './OtpService.js';

export interface ErasureDeps {
  redis: Redis;
  accounts: Accounts;
  otp: OtpService;
  /** The address book, which also owns reverse-index entries in other slots. */
  addressBook: { deleteAll(userId: string): Promise<void> };
  gateway: SocketGateway;
  events: HubEvents;
  log: Logger;
  /** How long the erasure tombstone outlives the erasure (ERASURE_TOMBSTONE_TTL_S). */
  tombstoneTtlSeconds: number;
}

export type ErasureReason = 'user_request' | 'under_minimum_age';

/** Every key identity and contacts keep in the user's own slot (but the erasure tombstone, which must outlive them). */
export function userOwnedKeys(userId: string): string[] {
  return [
    keys.user(userId),
    keys.userSessions(userId),
    keys.userDevices(userId),
    keys.userBook(userId),
    keys.userQuota(userId, 'discovery'),
    keys.userQuota(userId, 'contacts'),
  ];
}

/**
 * Account erasure: everything identity and contacts hold about a user goes,
 * in an order that stays safe if it stops half-way (running it again
 * finishes the job):
 * 0. a tombstone (`user:{uid}:erased`, TTL ERASURE_TOMBSTONE_TTL_S): the
 *    scripts that write a profile, session or address book refuse while it
 *    exists, so a sign-in that found the account just before the erasure
 *    cannot bring back a session (or profile) without an account after it;
 * 1. sessions, so no token of the account is accepted any more;
 * 2. the number's index, so a new sign-up cannot land on this account;
 * 3. the address book and its reverse-index entries (other hash slots);
 * 4. the user's own keys, in one transaction (one slot);
 * 5. what is kept under the number's hash (pending code, resend cooldown, send window);
 * then open sockets are closed with `account_deleted` and `user:deleted` is
 * announced so other subsystems (calls) drop their own state. Other users'
 * address books may still hold this number: that is their data, not this
 * user's.
 */
export class Erasure {
  constructor(private readonly deps: ErasureDeps) {}

  async erase(userId: string, reason: ErasureReason): Promise<void> {
    const { redis, accounts, otp, addressBook, gateway, events, log, tombstoneTtlSeconds } = this.deps;
    await redis.set(keys.userErased(userId), '1', 'EX', tombstoneTtlSeconds);
    const profile = await accounts.get(userId);
    await redis.del(keys.userSessions(userId));
    if (profile) await accounts.unindexPhone(profile.phone, userId);
    await addressBook.deleteAll(userId);
    await redis.multi().del(...userOwnedKeys(userId)).exec();
    if (profile) await otp.forgetNumber(profile.phone);
    gateway.closeRoom(rooms.user(userId), 'account_deleted', reason === 'under_minimum_age'
      ? 'Accounts are not available to children under 13; the account was erased'
      : 'The account was deleted');
    log.info({ userId, reason }, 'account erased');
    events.emit('user:deleted', { userId });
  }
}
