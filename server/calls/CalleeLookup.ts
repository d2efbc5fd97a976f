import type { Redis } from 'ioredis';
import { AppError } from '../../shared/protocol/errors.js';
import type { AddressBook } from '../contacts/AddressBook.js';
import type { Accounts } from '../identity/Accounts.js';
import type { PhoneHasher } from '../identity/PhoneHasher.js';
import type { RateLimiter } from '../identity/RateLimiter.js';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';

/** The quota contact discovery charges (server/contacts/Discovery.ts); calling by number draws on the same one. */
const QUOTA = 'discovery';
const DAY_S = 86400;

// KEYS: seen set, quota counter (both in the user's slot). ARGV: keyed number hash.
// Remembers a charged number until the quota window ends (the set expires with the counter).
const REMEMBER = new LuaScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl <= 0 then ttl = ${DAY_S * 1000} end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`);

export interface CalleeLookupDeps {
  redis: Redis;
  accounts: Accounts;
  /** The caller's address book (contacts): numbers in it are free to look up, as in discovery. */
  book: Pick<AddressBook, 'tagsOf'>;
  hasher: PhoneHasher;
  limiter: RateLimiter;
}

/**
 * Finding the account behind a phone number for `call:invite`. That is
 * contact discovery through another door, so it is charged like discovery,
 * against the same per-account daily budget (`DISCOVERY_NEW_NUMBERS_PER_DAY`,
 * counter `keys.userQuota(uid, 'discovery')`): a number that is in the
 * caller's address book, or that the caller already looked up in the current
 * window, is free; any other number costs one unit, whether or not it turns
 * out to be a user. Without units left: DISCOVERY_QUOTA_EXCEEDED, and nothing
 * is looked up.
 */
export class CalleeLookup {
  readonly #deps: CalleeLookupDeps;
  readonly #perDay: number;

  constructor(deps: CalleeLookupDeps, opts: { newNumbersPerDay: number }) {
    this.#deps = deps;
    this.#perDay = opts.newNumbersPerDay;
  }

  /** The user id holding `e164`, or null; charges the caller's quota first (see class doc). */
  async byPhone(callerId: string, e164: string): Promise<string | null> {
    const hash = this.#deps.hasher.hash(e164);
    await this.#charge(callerId, hash);
    return this.#deps.accounts.findByPhone(e164);
  }

  /** Removes what this lookup keeps about a user (the numbers charged in the current window). */
  async forget(userId: string): Promise<void> {
    await this.#deps.redis.del(keys.userQuotaSeen(userId, QUOTA));
  }

  async #charge(callerId: string, hash: string): Promise<void> {
    const { redis, limiter, book } = this.#deps;
    const seenKey = keys.userQuotaSeen(callerId, QUOTA);
    const [inBook, seen] = await Promise.all([book.tagsOf(callerId, `n:${hash}`), redis.sismember(seenKey, hash)]);
    if (inBook !== null || seen === 1) return;
    const counter = keys.userQuota(callerId, QUOTA);
    const decision = await limiter.consume(counter, { limit: this.#perDay, windowSeconds: DAY_S, kind: 'fixed' }, 1);
    if (!decision.allowed) {
      throw new AppError('DISCOVERY_QUOTA_EXCEEDED', 'No new numbers left to look up today; call a number from your address book or by user id', {
        retryAfter: decision.retryAfter, details: { newNumbers: 1, remaining: decision.remaining },
      });
    }
    await REMEMBER.run(redis, [seenKey, counter], [hash]);
  }
}
