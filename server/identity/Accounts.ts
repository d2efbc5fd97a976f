import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/protocol/errors.js';
import { keys } from '../keys.js';
import type { PhoneHasher } from './PhoneHasher.js';
import { LuaScript } from '../LuaScript.js';

export interface Profile {
  userId: string;
  /** Verified E.164 number: shown to callees as caller identity. */
  phone: string;
  displayName: string | null;
  createdAt: number;
  age?: number;
  gender?: string;
}

export interface ProfilePatch {
  displayName?: string;
  /** null clears. */
  age?: number | null;
  /** null clears. */
  gender?: string | null;
}

// KEYS: profile, erasure tombstone. Writes a profile only if none exists and the
// account is not being erased. Returns 1 when written, 0 when one exists, -1 when erased.
const CREATE_PROFILE = new LuaScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`);

// Applies a patch to an existing profile. ARGV: pairs of field, value; an empty value deletes.
const PATCH_PROFILE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
`);

// Removes the phone index only while it still names this user.
const UNINDEX = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`);

/**
 * User accounts in Redis: `user:{uid}` holds the profile; the number is found
 * through `phone:<keyed hash>`, never through a plain-number key.
 */
export class Accounts {
  constructor(private readonly redis: Redis, private readonly phoneHasher: PhoneHasher) {}

  static newUserId(): string {
    return `u${randomBytes(10).toString('base64url')}`;
  }

  async get(userId: string): Promise<Profile | null> {
    const h = await this.redis.hgetall(keys.user(userId));
    if (!h.phone) return null;
    return decodeProfile(userId, h);
  }

  async findByPhone(e164: string): Promise<string | null> {
    return this.redis.get(keys.phoneIndex(this.phoneHasher.hash(e164)));
  }

  /**
   * Creates the account for a verified number, or returns the existing one.
   * The phone index (its own hash slot) is claimed with SET NX, so two
   * verifications of the same number at once produce one account; the profile
   * is then written only if absent, so whichever verification gets there
   * first completes it even if the claimer died in between. Throws
   * ACCOUNT_DELETED when the index still named an account that is being (or
   * was just) erased: its profile is not brought back.
   */
  async findOrCreate(
    e164: string,
    displayName: string | null = null,
    extra: { age?: number } = {},
  ): Promise<{ profile: Profile; created: boolean }> {
    const indexKey = keys.phoneIndex(this.phoneHasher.hash(e164));
    const candidate = Accounts.newUserId();
    const claimed = await this.redis.set(indexKey, candidate, 'NX');
    const userId = claimed ? candidate : await this.redis.get(indexKey);
    // Released between the two calls: the account it named was erased meanwhile.
    if (!userId) throw new AppError('ACCOUNT_DELETED', 'The account was erased while signing in; sign in again to create a new one');
    const fresh: Profile = { userId, phone: e164, displayName, createdAt: Date.now() };
    if (extra.age !== undefined) fresh.age = extra.age;
    const written = await CREATE_PROFILE.run(this.redis, [keys.user(userId), keys.userErased(userId)], Object.entries(encodeProfile(fresh)).flat());
    if (written === 1) return { profile: fresh, created: true };
    const profile = written === 0 ? await this.get(userId) : null;
    if (!profile) throw new AppError('ACCOUNT_DELETED', 'The account was erased while signing in; sign in again to create a new one');
    return { profile, created: false };
  }

  /** Updates an existing profile; null when the account does not exist. */
  async update(userId: string, patch: ProfilePatch): Promise<Profile | null> {
    const args: string[] = [];
    if (patch.displayName !== undefined) args.push('displayName', patch.displayName);
    if (patch.age !== undefined) args.push('age', patch.age === null ? '' : String(patch.age));
    if (patch.gender !== undefined) args.push('gender', patch.gender ?? '');
    if (args.length > 0 && (await PATCH_PROFILE.run(this.redis, [keys.user(userId)], args)) !== 1) return null;
    return this.get(userId);
  }

  /** Drops the number -> user index if it still names this user (erasure). */
  async unindexPhone(e164: string, userId: string): Promise<void> {
    await UNINDEX.run(this.redis, [keys.phoneIndex(this.phoneHasher.hash(e164))], [userId]);
  }
}

export function encodeProfile(p: Profile): Record<string, string> {
  const out: Record<string, string> = { phone: p.phone, createdAt: String(p.createdAt) };
  if (p.displayName !== null) out.displayName = p.displayName;
  if (p.age !== undefined) out.age = String(p.age);
  if (p.gender !== undefined) out.gender = p.gender;
  return out;
}

export function decodeProfile(userId: string, h: Record<string, string>): Profile {
  const p: Profile = { userId, phone: h.phone!, displayName: h.displayName ?? null, createdAt: Number(h.createdAt) };
  if (h.age !== undefined) p.age = Number(h.age);
  if (h.gender !== undefined) p.gender = h.gender;
  return p;
}
