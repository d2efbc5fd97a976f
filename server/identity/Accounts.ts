import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from '../keys.js';
import type { PhoneHasher } from './PhoneHasher.js';

export interface Profile {
  userId: string;
  /** Verified E.164 number: shown to callees as caller identity. */
  phone: string;
  displayName: string | null;
  createdAt: number;
  age?: number;
  gender?: string;
}

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
   * Atomic: the phone index is claimed with SET NX so two verifications of the
   * same number at once produce one account.
   */
  async findOrCreate(e164: string, displayName: string | null = null): Promise<{ profile: Profile; created: boolean }> {
    const indexKey = keys.phoneIndex(this.phoneHasher.hash(e164));
    const candidate = Accounts.newUserId();
    const claimed = await this.redis.set(indexKey, candidate, 'NX');
    const userId = claimed ? candidate : await this.redis.get(indexKey);
    if (!userId) throw new Error('phone index vanished during sign-up');
    if (claimed) {
      const profile: Profile = { userId, phone: e164, displayName, createdAt: Date.now() };
      await this.redis.hset(keys.user(userId), encodeProfile(profile));
      return { profile, created: true };
    }
    const profile = await this.get(userId);
    if (!profile) throw new Error('account index points to a missing profile');
    return { profile, created: false };
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
