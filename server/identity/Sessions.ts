import { createHash, randomBytes, randomUUID } from 'node:crypto';
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
  /** Opaque, single use; only its SHA-256 is stored. */
  refreshToken: string;
  refreshExpiresAt: number;
}

const DEFAULT_REFRESH_TTL_S = 30 * 86400;
/** Spent refresh-token hashes kept per session to recognise reuse. */
const SPENT_KEPT = 20;

// KEYS: sessions, devices. ARGV: sessionId, session JSON, deviceId, device JSON, now.
// Writes the session and (if new) its device, and prunes sessions whose refresh
// token expired, with the devices only they used.
const CREATE = new LuaScript(`
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

// KEYS: sessions, devices. ARGV: sessionId. Removes the session and its device when
// no other session of the user uses that device. Returns the device id or false.
const REVOKE = new LuaScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local ok, s = pcall(cjson.decode, raw)
if not ok or not s.deviceId then return false end
for _, other in ipairs(redis.call('HVALS', KEYS[1])) do
  local ok2, o = pcall(cjson.decode, other)
  if ok2 and o.deviceId == s.deviceId then return s.deviceId end
end
redis.call('HDEL', KEYS[2], s.deviceId)
return s.deviceId
`);

// KEYS: sessions, devices. ARGV: sessionId, presented hash, new hash, new expiry, now, spent kept.
// Returns { status, deviceId }: ok (rotated), expired, reused (session revoked), invalid, missing.
const ROTATE = new LuaScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'missing', '' } end
local s = cjson.decode(raw)
local now = tonumber(ARGV[5])
if s.refreshHash == ARGV[2] then
  if tonumber(s.refreshExpiresAt or 0) < now then return { 'expired', s.deviceId } end
  local spent = s.spent or ''
  spent = s.refreshHash .. (spent == '' and '' or (' ' .. spent))
  local kept, n = {}, 0
  for h in string.gmatch(spent, '%S+') do
    n = n + 1
    if n <= tonumber(ARGV[6]) then kept[n] = h end
  end
  s.spent = table.concat(kept, ' ')
  s.refreshHash = ARGV[3]
  s.refreshExpiresAt = tonumber(ARGV[4])
  s.lastRefreshAt = now
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
  return { 'ok', s.deviceId }
end
for h in string.gmatch(s.spent or '', '%S+') do
  if h == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[1])
    local shared = false
    for _, other in ipairs(redis.call('HVALS', KEYS[1])) do
      local ok2, o = pcall(cjson.decode, other)
      if ok2 and o.deviceId == s.deviceId then shared = true end
    end
    if not shared then redis.call('HDEL', KEYS[2], s.deviceId) end
    return { 'reused', s.deviceId }
  end
end
return { 'invalid', s.deviceId }
`);

const TOKEN_RE = /^rt1\.([A-Za-z0-9_-]{1,64})\.([a-f0-9]{32})\.([A-Za-z0-9_-]{43})$/;

/**
 * Signed-in devices. One session per device sign-in; an access token names its
 * session, so revoking the session (logout, refresh-token reuse, erasure)
 * invalidates its tokens at the next check. Each session holds the SHA-256 of
 * its current refresh token and of the last few spent ones: presenting a
 * spent one means the token was copied, and the session is revoked.
 */
export class Sessions {
  constructor(private readonly redis: Redis) {}

  /** Signs a device in. The device record is created unless it exists (a device may hold several sessions). */
  async create(userId: string, deviceId: string, opts: { refreshTtlSeconds?: number; device?: NewDevice } = {}): Promise<CreatedSession> {
    const now = Date.now();
    const secret = randomBytes(32).toString('base64url');
    const sessionId = randomUUID().replace(/-/g, '');
    const refreshExpiresAt = now + (opts.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_S) * 1000;
    const stored = { sessionId, deviceId, createdAt: now, refreshHash: sha256(secret), refreshExpiresAt, spent: '' };
    const device = { deviceId, ...opts.device, createdAt: now, updatedAt: now };
    await CREATE.run(this.redis, [keys.userSessions(userId), keys.userDevices(userId)], [
      sessionId, JSON.stringify(stored), deviceId, JSON.stringify(device), now,
    ]);
    return { sessionId, deviceId, createdAt: now, refreshExpiresAt, refreshToken: formatToken(userId, sessionId, secret) };
  }

  async isActive(userId: string, sessionId: string): Promise<boolean> {
    return (await this.redis.hexists(keys.userSessions(userId), sessionId)) === 1;
  }

  async get(userId: string, sessionId: string): Promise<SessionRecord | null> {
    const raw = await this.redis.hget(keys.userSessions(userId), sessionId);
    return raw ? toRecord(raw) : null;
  }

  async list(userId: string): Promise<SessionRecord[]> {
    const all = await this.redis.hvals(keys.userSessions(userId));
    return all.map(toRecord).filter((r): r is SessionRecord => r !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Ends a session and drops its device registration unless another session uses it. Returns the device id. */
  async revoke(userId: string, sessionId: string): Promise<string | null> {
    const result = await REVOKE.run(this.redis, [keys.userSessions(userId), keys.userDevices(userId)], [sessionId]);
    return typeof result === 'string' ? result : null;
  }

  /**
   * Spends a refresh token and returns its successor. Throws
   * REFRESH_TOKEN_INVALID (malformed, unknown or expired), SESSION_REVOKED
   * (the session no longer exists) or REFRESH_TOKEN_REUSED (a spent token:
   * the session is revoked now and `onReuse` runs so the caller can close its sockets).
   */
  async rotate(
    token: string,
    opts: { refreshTtlSeconds?: number; onReuse?: (userId: string, sessionId: string) => void } = {},
  ): Promise<{ userId: string; sessionId: string; deviceId: string; refreshToken: string; refreshExpiresAt: number }> {
    const m = TOKEN_RE.exec(token);
    if (!m) throw new AppError('REFRESH_TOKEN_INVALID');
    const [, userId, sessionId, secret] = m as unknown as [string, string, string, string];
    const now = Date.now();
    const next = randomBytes(32).toString('base64url');
    const refreshExpiresAt = now + (opts.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_S) * 1000;
    const [status, deviceId] = (await ROTATE.run(this.redis, [keys.userSessions(userId), keys.userDevices(userId)], [
      sessionId, sha256(secret), sha256(next), refreshExpiresAt, now, SPENT_KEPT,
    ])) as [string, string];
    switch (status) {
      case 'ok':
        return { userId, sessionId, deviceId, refreshToken: formatToken(userId, sessionId, next), refreshExpiresAt };
      case 'reused':
        opts.onReuse?.(userId, sessionId);
        throw new AppError('REFRESH_TOKEN_REUSED');
      case 'missing':
        throw new AppError('SESSION_REVOKED');
      case 'expired':
        throw new AppError('REFRESH_TOKEN_INVALID', 'The refresh token has expired; sign in again');
      default:
        throw new AppError('REFRESH_TOKEN_INVALID');
    }
  }
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** `rt1.<user>.<session>.<secret>`: clients treat it as opaque; the server finds the session without an extra index. */
function formatToken(userId: string, sessionId: string, secret: string): string {
  return `rt1.${userId}.${sessionId}.${secret}`;
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
