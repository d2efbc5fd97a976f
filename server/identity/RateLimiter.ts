import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from '../LuaScript.js';

/**
 * `fixed`: one counter per window that starts with the first hit (cheap, fits
 * large budgets such as daily quotas). `sliding`: an exact log of hits over
 * the last window (fair for small hourly limits; memory grows with `limit`).
 */
export type WindowKind = 'fixed' | 'sliding';

export interface RateLimit {
  /** Units allowed per window. */
  limit: number;
  windowSeconds: number;
  /** Defaults to `sliding`. */
  kind?: WindowKind;
}

export interface RateDecision {
  allowed: boolean;
  /** Units left in the window after this decision. */
  remaining: number;
  /** Seconds until the refused cost would fit (0 when allowed). */
  retryAfter: number;
}

export interface RateCheck {
  /** A name the caller uses to tell which limit refused (e.g. `ip`). */
  name: string;
  /** The Redis key of the window (see keys.rateLimit); ids in it must not be personal data in the clear. */
  key: string;
  limit: RateLimit;
  cost?: number;
}

/** Sliding logs hold one member per unit; larger costs must use a fixed window. */
const MAX_SLIDING_COST = 10_000;

// Both scripts take the clock from Redis (TIME) so several hub processes agree.
// Returns { allowed (0/1), remaining, retryAfterMs }.
const FIXED = new LuaScript(`
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local consume = ARGV[4] == '1'
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + cost > limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = windowMs end
  if cost > limit then ttl = math.max(ttl, windowMs) end
  return { 0, math.max(limit - current, 0), ttl }
end
if consume then
  local n = redis.call('INCRBY', KEYS[1], cost)
  if n == cost or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], windowMs) end
end
return { 1, limit - current - (consume and cost or 0), 0 }
`);

const SLIDING = new LuaScript(`
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local consume = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
local count = redis.call('ZCARD', KEYS[1])
if count + cost > limit then
  if cost > limit then return { 0, math.max(limit - count, 0), windowMs } end
  -- The window frees up when the (count + cost - limit)-th oldest hit ages out.
  local oldest = redis.call('ZRANGE', KEYS[1], count + cost - limit - 1, count + cost - limit - 1, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + windowMs - now
  return { 0, math.max(limit - count, 0), math.max(wait, 1) }
end
if consume then
  for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i) end
  redis.call('PEXPIRE', KEYS[1], windowMs)
end
return { 1, limit - count - (consume and cost or 0), 0 }
`);

const REFUND_FIXED = new LuaScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return 0 end
local left = redis.call('DECRBY', KEYS[1], math.min(n, tonumber(ARGV[1])))
if left <= 0 then redis.call('DEL', KEYS[1]) end
return 1
`);

/**
 * Redis-backed rate limits shared by every hub process. Any subsystem may use
 * one (`new RateLimiter(ctx.redis)`); keys come from `keys.rateLimit` or, for
 * limits that belong to a user, from the user's own keys so erasure finds them.
 */
export class RateLimiter {
  constructor(private readonly redis: Redis) {}

  /** Takes `cost` units if they fit; otherwise takes nothing and says when to retry. */
  async consume(key: string, limit: RateLimit, cost = 1): Promise<RateDecision & { refund(): Promise<void> }> {
    validate(limit, cost);
    const member = randomBytes(8).toString('hex');
    const decision = await this.#run(key, limit, cost, true, member);
    const refund = async () => {
      if (!decision.allowed) return;
      if ((limit.kind ?? 'sliding') === 'fixed') {
        await REFUND_FIXED.run(this.redis, [key], [cost]);
      } else {
        await this.redis.zrem(key, ...Array.from({ length: cost }, (_, i) => `${member}:${i + 1}`));
      }
    };
    return { ...decision, refund };
  }

  /** What `consume` would decide, without taking anything. */
  peek(key: string, limit: RateLimit, cost = 1): Promise<RateDecision> {
    validate(limit, cost);
    return this.#run(key, limit, cost, false, '');
  }

  /**
   * Takes one unit from every check, or from none: when one refuses, the
   * units already taken are given back, so a refusal on one limit (say, the
   * client IP) does not eat into another (the number's own budget).
   */
  async consumeAll(checks: RateCheck[]): Promise<{ allowed: true } | { allowed: false; name: string; retryAfter: number }> {
    const taken: (() => Promise<void>)[] = [];
    for (const check of checks) {
      const decision = await this.consume(check.key, check.limit, check.cost ?? 1);
      if (!decision.allowed) {
        await Promise.all(taken.map((refund) => refund()));
        return { allowed: false, name: check.name, retryAfter: decision.retryAfter };
      }
      taken.push(decision.refund);
    }
    return { allowed: true };
  }

  async reset(...keys: string[]): Promise<void> {
    if (keys.length > 0) await Promise.all(keys.map((k) => this.redis.del(k)));
  }

  async #run(key: string, limit: RateLimit, cost: number, consume: boolean, member: string): Promise<RateDecision> {
    const script = (limit.kind ?? 'sliding') === 'fixed' ? FIXED : SLIDING;
    const [allowed, remaining, retryMs] = (await script.run(this.redis, [key], [
      cost, limit.limit, limit.windowSeconds * 1000, consume ? '1' : '0', member,
    ])) as [number, number, number];
    return {
      allowed: allowed === 1,
      remaining: Math.max(0, remaining),
      retryAfter: allowed === 1 ? 0 : Math.max(1, Math.ceil(retryMs / 1000)),
    };
  }
}

function validate(limit: RateLimit, cost: number): void {
  if (!Number.isInteger(limit.limit) || limit.limit < 1) throw new TypeError('limit must be a positive integer');
  if (!Number.isInteger(limit.windowSeconds) || limit.windowSeconds < 1) throw new TypeError('windowSeconds must be a positive integer');
  if (!Number.isInteger(cost) || cost < 1) throw new TypeError('cost must be a positive integer');
  if ((limit.kind ?? 'sliding') === 'sliding' && cost > MAX_SLIDING_COST) throw new TypeError(`sliding windows take a cost of at most ${MAX_SLIDING_COST}`);
}
