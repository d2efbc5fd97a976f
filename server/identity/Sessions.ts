import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/protocol/errors.js';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';

export interface SessionRecord {
  sessionId: string;
  deviceId: string;
  createdAt: number;
  lastRefreshAt?: number;
  refreshExpiresAt?: number;
}

/** What a new device registration starts with. */
export interface NewDevice {
  platform?: string;
  name?: string;
}

export interface CreatedSession extends SessionRecord {
  /** Opaque, single use (see `Sessions`). */
  refreshToken: string;
  refreshExpiresAt: number;
}

export interface SessionsOptions {
  /**
   * Server secret the refresh-token MACs are keyed with; the same on every hub
   * (derived from IDENTITY_HMAC_KEYS). Redis alone is not enough to mint a token.
   */
  tokenKey: Buffer;
}

export interface RotateOptions {
  refreshTtlSeconds?: number;
  /** Runs after the token proved genuine and current, before it is spent; throw to refuse (e.g. a rate limit): nothing is spent. */
  beforeRotate?: (userId: string, sessionId: string) => Promise<void>;
  /** Runs once a spent token revoked the session, so the caller can close its sockets. */
  onReuse?: (userId: string, sessionId: string) => void;
}

/** The session as stored (never leaves the server). */
interface StoredSession extends SessionRecord {
  /** Random per session; with the server key it derives each generation's token. */
  seed: string;
  /** Generation of the current refresh token; every older one is spent. */
  gen: number;
}

const DEFAULT_REFRESH_TTL_S = 30 * 86400;

// Shared by the scripts: the account still exists (profile present, no erasure tombstone).
const ACCOUNT_LIVE = `
local function accountLive(profileKey, tombstoneKey)
  return redis.call('EXISTS', tombstoneKey) == 0 and redis.call('EXISTS', profileKey) == 1
end
`;

// Shared by the scripts: removes a session and its device unless another session of the user uses it.
const DROP_SESSION = `
local function dropSession(sessionsKey, devicesKey, sessionId, deviceId)
  redis.call('HDEL', sessionsKey, sessionId)
  if not deviceId then return end
  for _, other in ipairs(redis.call('HVALS', sessionsKey)) do
    local ok, o = pcall(cjson.decode, other)
    if ok and o.deviceId == deviceId then return end
  end
  redis.call('HDEL', devicesKey, deviceId)
end
`;

// KEYS: sessions, devices, profile, erasure tombstone. ARGV: sessionId, session JSON, deviceId, device JSON, now.
// Refuses (0) when the account is gone or being erased, so a sign-in racing an
// erasure cannot leave sessions without an account. Otherwise writes the session
// and (if new) its device, and prunes sessions whose refresh token expired, with
// the devices only they used.
const CREATE = new LuaScript(`${ACCOUNT_LIVE}
if not accountLive(KEYS[3], KEYS[4]) then return 0 end
local now = tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, s = pcall(cjson.decode, all[i + 1])
  if ok and s.refreshExpiresAt and tonumber(s.refreshExpiresAt) < now then
    redis.call('HDEL', KEYS[1], all[i])
    local used = false
    local rest = redis.call('HVALS', KEYS[1])
    for _, raw in ipairs(rest) do
      local ok2, o = pcall(cjson.decode, raw)
      if ok2 and o.deviceId == s.deviceId then used = true end
    end
    if not used and s.deviceId ~= ARGV[3] then redis.call('HDEL', KEYS[2], s.deviceId) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
return 1
`);

// KEYS: sessions, profile, erasure tombstone. ARGV: sessionId. 1 when the session
// exists and so does its account (one round trip for every HTTP request and handshake).
const ACTIVE = new LuaScript(`${ACCOUNT_LIVE}
if not accountLive(KEYS[2], KEYS[3]) then return 0 end
return redis.call('HEXISTS', KEYS[1], ARGV[1])
`);

// KEYS: sessions, devices. ARGV: sessionId. Returns the device id or false.
const REVOKE = new LuaScript(`${DROP_SESSION}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local ok, s = pcall(cjson.decode, raw)
if not ok or not s.deviceId then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return false
end
dropSession(KEYS[1], KEYS[2], ARGV[1], s.deviceId)
return s.deviceId
`);

// KEYS: sessions, devices, profile, erasure tombstone. ARGV: sessionId, generation
// presented (already verified), new expiry, now.
// Moves the session to the next generation if the presented one is still current.
// If another refresh spent it meanwhile, the same token was presented twice:
// reuse, the session is revoked. Returns { status, deviceId }.
const ROTATE = new LuaScript(`${ACCOUNT_LIVE}${DROP_SESSION}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'missing', '' } end
if not accountLive(KEYS[3], KEYS[4]) then return { 'missing', '' } end
local s = cjson.decode(raw)
if tonumber(s.gen) ~= tonumber(ARGV[2]) then
  dropSession(KEYS[1], KEYS[2], ARGV[1], s.deviceId)
  return { 'reused', s.deviceId or '' }
end
s.gen = tonumber(ARGV[2]) + 1
s.refreshExpiresAt = tonumber(ARGV[3])
s.lastRefreshAt = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
return { 'ok', s.deviceId }
`);

/** `rt2.<user>.<session>.<generation>.<mac>`; the format is the server's business (clients treat it as opaque). */
const TOKEN_RE = /^rt2\.([A-Za-z0-9_-]{1,64})\.([a-f0-9]{32})\.(0|[1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})$/;

/**
 * Signed-in devices. One session per device sign-in; an access token names its
 * session, so revoking the session (logout, refresh-token reuse, erasure)
 * invalidates its tokens at the next check.
 *
 * Refresh tokens carry a generation: each rotation spends generation g and
 * issues g + 1. A token's secret is an HMAC, under the server key, of the
 * session's random seed and the generation, so the server can check any
 * generation of a session without storing its tokens, and Redis holds no
 * usable token. A genuine token of an older generation is a spent one,
 * however many rotations ago: it was copied, and the session is revoked. A
 * token that fails the MAC is only refused, so knowing a session id is not
 * enough to sign someone out.
 */
export class Sessions {
  readonly #redis: Redis;
  readonly #tokenKey: Buffer;

  constructor(redis: Redis, opts: SessionsOptions) {
    if (opts.tokenKey.length < 16) throw new TypeError('tokenKey must hold at least 16 bytes');
    this.#redis = redis;
    this.#tokenKey = opts.tokenKey;
  }

  /**
   * Signs a device in. The device record is created unless it exists (a
   * device may hold several sessions). Throws ACCOUNT_DELETED when the
   * account has no profile or is being erased.
   */
  async create(userId: string, deviceId: string, opts: { refreshTtlSeconds?: number; device?: NewDevice } = {}): Promise<CreatedSession> {
    const now = Date.now();
    const seed = randomBytes(16).toString('base64url');
    const sessionId = randomUUID().replace(/-/g, '');
    const refreshExpiresAt = now + (opts.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_S) * 1000;
    const stored: StoredSession = { sessionId, deviceId, createdAt: now, seed, gen: 0, refreshExpiresAt };
    const device = { deviceId, ...opts.device, createdAt: now, updatedAt: now };
    const created = await CREATE.run(this.#redis, [keys.userSessions(userId), keys.userDevices(userId), keys.user(userId), keys.userErased(userId)], [
      sessionId, JSON.stringify(stored), deviceId, JSON.stringify(device), now,
    ]);
    if (created !== 1) throw new AppError('ACCOUNT_DELETED', 'The account was erased; sign in again to create a new one');
    return { sessionId, deviceId, createdAt: now, refreshExpiresAt, refreshToken: this.#token(userId, sessionId, seed, 0) };
  }

  /** True while the session exists and its account does (profile present, not being erased). */
  async isActive(userId: string, sessionId: string): Promise<boolean> {
    return (await ACTIVE.run(this.#redis, [keys.userSessions(userId), keys.user(userId), keys.userErased(userId)], [sessionId])) === 1;
  }

  async get(userId: string, sessionId: string): Promise<SessionRecord | null> {
    const raw = await this.#redis.hget(keys.userSessions(userId), sessionId);
    return raw ? toRecord(raw) : null;
  }

  async list(userId: string): Promise<SessionRecord[]> {
    const all = await this.#redis.hvals(keys.userSessions(userId));
    return all.map(toRecord).filter((r): r is SessionRecord => r !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Ends a session and drops its device registration unless another session uses it. Returns the device id. */
  async revoke(userId: string, sessionId: string): Promise<string | null> {
    const result = await REVOKE.run(this.#redis, [keys.userSessions(userId), keys.userDevices(userId)], [sessionId]);
    return typeof result === 'string' ? result : null;
  }

  /**
   * Spends a refresh token and returns its successor. Throws
   * REFRESH_TOKEN_INVALID (malformed, forged or expired), SESSION_REVOKED
   * (the session or its account no longer exists), REFRESH_TOKEN_REUSED (a
   * genuine token of an older generation: the session is revoked now and
   * `onReuse` runs), or whatever `beforeRotate` throws.
   */
  async rotate(
    token: string,
    opts: RotateOptions = {},
  ): Promise<{ userId: string; sessionId: string; deviceId: string; refreshToken: string; refreshExpiresAt: number }> {
    const m = TOKEN_RE.exec(token);
    if (!m) throw new AppError('REFRESH_TOKEN_INVALID');
    const [, userId, sessionId, genText, mac] = m as unknown as [string, string, string, string, string];
    const gen = Number(genText);
    const raw = await this.#redis.hget(keys.userSessions(userId), sessionId);
    if (!raw) throw new AppError('SESSION_REVOKED');
    const session = parseStored(raw);
    if (!session || gen > session.gen || !this.#macMatches(mac, userId, sessionId, session.seed, gen)) {
      throw new AppError('REFRESH_TOKEN_INVALID');
    }
    if (gen < session.gen) return this.#reused(userId, sessionId, opts);

    const now = Date.now();
    if ((session.refreshExpiresAt ?? 0) < now) throw new AppError('REFRESH_TOKEN_INVALID', 'The refresh token has expired; sign in again');
    await opts.beforeRotate?.(userId, sessionId);
    const refreshExpiresAt = now + (opts.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_S) * 1000;
    const [status, deviceId] = (await ROTATE.run(this.#redis, [
      keys.userSessions(userId), keys.userDevices(userId), keys.user(userId), keys.userErased(userId),
    ], [sessionId, gen, refreshExpiresAt, now])) as [string, string];
    switch (status) {
      case 'ok':
        return { userId, sessionId, deviceId, refreshToken: this.#token(userId, sessionId, session.seed, gen + 1), refreshExpiresAt };
      case 'reused':
        opts.onReuse?.(userId, sessionId);
        throw new AppError('REFRESH_TOKEN_REUSED');
      default:
        throw new AppError('SESSION_REVOKED');
    }
  }

  async #reused(userId: string, sessionId: string, opts: RotateOptions): Promise<never> {
    await this.revoke(userId, sessionId);
    opts.onReuse?.(userId, sessionId);
    throw new AppError('REFRESH_TOKEN_REUSED');
  }

  #mac(userId: string, sessionId: string, seed: string, gen: number): Buffer {
    return createHmac('sha256', this.#tokenKey).update(`refresh/v2|${userId}|${sessionId}|${seed}|${gen}`).digest();
  }

  #macMatches(presented: string, userId: string, sessionId: string, seed: string, gen: number): boolean {
    // Compared as text: base64url decoding ignores the last character's spare bits, so bytes would let altered tokens through.
    const given = Buffer.from(presented);
    const expected = Buffer.from(this.#mac(userId, sessionId, seed, gen).toString('base64url'));
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The user and session ids let the server find the session without another index. */
  #token(userId: string, sessionId: string, seed: string, gen: number): string {
    return `rt2.${userId}.${sessionId}.${gen}.${this.#mac(userId, sessionId, seed, gen).toString('base64url')}`;
  }
}

function parseStored(raw: string): StoredSession | null {
  try {
    const s = JSON.parse(raw) as Partial<StoredSession>;
    if (typeof s.seed !== 'string' || !Number.isInteger(s.gen) || typeof s.deviceId !== 'string') return null;
    return s as StoredSession;
  } catch {
    return null;
  }
}

function toRecord(raw: string): SessionRecord | null {
  try {
    const s = JSON.parse(raw) as SessionRecord;
    const r: SessionRecord = { sessionId: s.sessionId, deviceId: s.deviceId, createdAt: s.createdAt };
    if (typeof s.lastRefreshAt === 'number') r.lastRefreshAt = s.lastRefreshAt;
    if (typeof s.refreshExpiresAt === 'number') r.refreshExpiresAt = s.refreshExpiresAt;
    return r;
  } catch {
    return null;
  }
}
