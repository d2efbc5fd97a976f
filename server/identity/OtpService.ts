import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/protocol/errors.js';
import type { Logger } from '../../shared/runtime/log.js';
import { keys } from '../keys.js';
import { CodeDeliveryError, type CodeDelivery } from './CodeDelivery.js';
import type { PhoneHasher } from './PhoneHasher.js';
import type { PhoneNumbers } from './PhoneNumbers.js';
import type { RateLimiter } from './RateLimiter.js';
import { LuaScript } from '../LuaScript.js';

export interface OtpOptions {
  /** Lifetime of a code, seconds. */
  ttlSeconds: number;
  /** Wrong tries allowed per code; the last one burns the code. */
  maxAttempts: number;
  /** Minimum seconds between two codes to one number (0: none). */
  resendCooldownSeconds: number;
  perNumberPerHour: number;
  perIpPerHour: number;
  perPrefixPerHour: number;
  verifyPerIpPerHour: number;
}

export interface OtpDeps {
  redis: Redis;
  hasher: PhoneHasher;
  numbers: PhoneNumbers;
  delivery: CodeDelivery;
  limiter: RateLimiter;
  log: Logger;
}

const HOUR = 3600;

// Consumes the code if it is still the one that matched (single use even when two
// verifications race). Returns 1 when consumed.
const CONSUME = new LuaScript(`
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[1] then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

// Counts a wrong try against the code that was read (not a newer one). Returns the
// attempts so far, or -1 when the code changed meanwhile.
const WRONG_TRY = new LuaScript(`
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[1] then return -1 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
`);

const DELETE_IF_MAC = new LuaScript(`
if redis.call('HGET', KEYS[1], 'mac') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * One-time sign-in codes: 6 digits from a CSPRNG, stored only as an HMAC bound
 * to the number's keyed hash, compared in constant time, single use, with a
 * lifetime, a wrong-try budget, a resend cooldown, and send limits per number,
 * per client IP and per number prefix (SMS-pumping defence).
 */
export class OtpService {
  readonly #deps: OtpDeps;
  readonly #opts: OtpOptions;
  readonly #macKey: Buffer;

  constructor(deps: OtpDeps, opts: OtpOptions) {
    this.#deps = deps;
    this.#opts = opts;
    this.#macKey = deps.hasher.deriveKey('otp-code/v1');
  }

  /** Sends a new code (replacing any pending one); throws RATE_LIMITED or CODE_DELIVERY_FAILED. */
  async request(req: { e164: string; channel: 'sms' | 'voice'; locale: string; ip: string }): Promise<{ expiresIn: number; resendAfter: number }> {
    const { redis, hasher, numbers, limiter, delivery, log } = this.#deps;
    const o = this.#opts;
    const phoneHash = hasher.hash(req.e164);
    const cooldownKey = keys.rateLimit('otp-cooldown', phoneHash);

    if (o.resendCooldownSeconds > 0) {
      const claimed = await redis.set(cooldownKey, '1', 'PX', o.resendCooldownSeconds * 1000, 'NX');
      if (!claimed) {
        const ttl = await redis.pttl(cooldownKey);
        throw new AppError('RATE_LIMITED', 'Wait before asking for another code', {
          retryAfter: Math.max(1, Math.ceil(ttl / 1000)), details: { limit: 'cooldown' },
        });
      }
    }
    const releaseCooldown = () => (o.resendCooldownSeconds > 0 ? redis.del(cooldownKey) : Promise.resolve(0));

    const decision = await limiter.consumeAll([
      { name: 'number', key: keys.rateLimit('otp-number', phoneHash), limit: { limit: o.perNumberPerHour, windowSeconds: HOUR } },
      { name: 'ip', key: keys.rateLimit('otp-ip', hasher.hashTagged('ip', req.ip)), limit: { limit: o.perIpPerHour, windowSeconds: HOUR } },
      { name: 'prefix', key: keys.rateLimit('otp-prefix', numbers.prefixOf(req.e164)), limit: { limit: o.perPrefixPerHour, windowSeconds: HOUR } },
    ]);
    if (!decision.allowed) {
      await releaseCooldown();
      log.warn({ limit: decision.name }, 'code request refused by rate limit');
      throw new AppError('RATE_LIMITED', `Too many codes requested (${decision.name} limit)`, {
        retryAfter: decision.retryAfter, details: { limit: decision.name },
      });
    }

    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const mac = this.#mac(phoneHash, code);
    const otpKey = keys.otp(phoneHash);
    await redis.multi()
      .del(otpKey)
      .hset(otpKey, { mac, attempts: '0', sentAt: String(Date.now()), channel: req.channel })
      .expire(otpKey, o.ttlSeconds)
      .exec();

    try {
      await delivery.send({ to: req.e164, channel: req.channel, code, locale: req.locale });
    } catch (err) {
      await DELETE_IF_MAC.run(redis, [otpKey], [mac]);
      await releaseCooldown();
      const attempts = err instanceof CodeDeliveryError ? err.attempts : undefined;
      log.error({ provider: delivery.name, attempts, problem: err instanceof Error ? err.message : String(err) }, 'code delivery failed');
      throw new AppError('CODE_DELIVERY_FAILED');
    }
    return { expiresIn: o.ttlSeconds, resendAfter: o.resendCooldownSeconds };
  }

  /**
   * Checks a code; resolves once it is consumed. Throws CODE_EXPIRED (none
   * pending), CODE_INVALID (wrong, tries left), CODE_ATTEMPTS_EXCEEDED (the
   * code is burnt) or RATE_LIMITED (too many verifications from this IP).
   */
  async verify(req: { e164: string; code: string; ip: string }): Promise<void> {
    const { redis, hasher, limiter } = this.#deps;
    const o = this.#opts;
    const ipLimit = await limiter.consume(keys.rateLimit('verify-ip', hasher.hashTagged('ip', req.ip)), { limit: o.verifyPerIpPerHour, windowSeconds: HOUR });
    if (!ipLimit.allowed) {
      throw new AppError('RATE_LIMITED', 'Too many verification attempts (ip limit)', { retryAfter: ipLimit.retryAfter, details: { limit: 'verify_ip' } });
    }

    const phoneHash = hasher.hash(req.e164);
    const otpKey = keys.otp(phoneHash);
    const pending = await redis.hgetall(otpKey);
    if (!pending.mac) throw new AppError('CODE_EXPIRED');
    if (Number(pending.attempts ?? 0) >= o.maxAttempts) throw new AppError('CODE_ATTEMPTS_EXCEEDED');

    const stored = Buffer.from(pending.mac, 'hex');
    const offered = Buffer.from(this.#mac(phoneHash, req.code), 'hex');
    if (stored.length === offered.length && timingSafeEqual(stored, offered)) {
      if ((await CONSUME.run(redis, [otpKey], [pending.mac, o.maxAttempts])) !== 1) throw new AppError('CODE_EXPIRED');
      return;
    }
    const attempts = Number(await WRONG_TRY.run(redis, [otpKey], [pending.mac]));
    if (attempts < 0) throw new AppError('CODE_EXPIRED', 'A newer code was sent; use that one');
    if (attempts >= o.maxAttempts) throw new AppError('CODE_ATTEMPTS_EXCEEDED');
    throw new AppError('CODE_INVALID', undefined, { details: { remainingAttempts: o.maxAttempts - attempts } });
  }

  /** Drops everything held under a number's hash: pending code, cooldown, its own send window. */
  async forgetNumber(e164: string): Promise<void> {
    const phoneHash = this.#deps.hasher.hash(e164);
    await this.#deps.redis.del(keys.otp(phoneHash), keys.rateLimit('otp-cooldown', phoneHash), keys.rateLimit('otp-number', phoneHash));
  }

  #mac(phoneHash: string, code: string): string {
    return createHmac('sha256', this.#macKey).update(`${phoneHash}:${code}`).digest('hex');
  }
}
