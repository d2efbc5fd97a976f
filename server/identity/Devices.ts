import type { Redis } from 'ioredis';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';

export interface DeviceRecord {
  deviceId: string;
  platform?: string;
  name?: string;
  /** APNs alert token (iOS) or FCM registration token (Android, web). */
  pushToken?: string;
  /** iOS PushKit (VoIP) token: used only for incoming calls. */
  voipToken?: string;
  createdAt: number;
  updatedAt: number;
}

export type DeviceRegistration = Pick<DeviceRecord, 'platform' | 'name' | 'pushToken' | 'voipToken'>;

// KEYS: devices. ARGV: deviceId, registration JSON, now. Replaces the mutable
// fields of an existing device; returns the new JSON or false when absent.
const REPLACE = new LuaScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local d = cjson.decode(raw)
local r = cjson.decode(ARGV[2])
local out = { deviceId = d.deviceId, createdAt = d.createdAt, updatedAt = tonumber(ARGV[3]),
  platform = r.platform, name = r.name, pushToken = r.pushToken, voipToken = r.voipToken }
local encoded = cjson.encode(out)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
`);

// KEYS: devices. ARGV: deviceId, field, token. Drops a push token the push service
// reported dead, unless the device registered a new one meanwhile.
const DROP_TOKEN = new LuaScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local d = cjson.decode(raw)
if d[ARGV[2]] ~= ARGV[3] then return 0 end
d[ARGV[2]] = nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
return 1
`);

/**
 * Device registrations (`user:{uid}:devices`): platform, name and push tokens
 * of each signed-in device. A device record is created with its session and
 * removed when its last session ends (logout, refresh-token reuse, erasure).
 */
export class Devices {
  constructor(private readonly redis: Redis) {}

  async get(userId: string, deviceId: string): Promise<DeviceRecord | null> {
    const raw = await this.redis.hget(keys.userDevices(userId), deviceId);
    return raw ? parse(raw) : null;
  }

  async list(userId: string): Promise<DeviceRecord[]> {
    const all = await this.redis.hvals(keys.userDevices(userId));
    return all.map(parse).filter((d): d is DeviceRecord => d !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Replaces platform, name and push tokens (omitted ones are cleared); null when the device is unknown. */
  async replace(userId: string, deviceId: string, reg: DeviceRegistration): Promise<DeviceRecord | null> {
    const result = await REPLACE.run(this.redis, [keys.userDevices(userId)], [deviceId, JSON.stringify(reg), Date.now()]);
    return typeof result === 'string' ? parse(result) : null;
  }

  /** For the push service: forget a token the provider says is dead (APNs 410, FCM UNREGISTERED). */
  async dropPushToken(userId: string, deviceId: string, kind: 'pushToken' | 'voipToken', token: string): Promise<boolean> {
    return (await DROP_TOKEN.run(this.redis, [keys.userDevices(userId)], [deviceId, kind, token])) === 1;
  }
}

function parse(raw: string): DeviceRecord | null {
  try {
    const d = JSON.parse(raw) as Partial<DeviceRecord>;
    if (typeof d.deviceId !== 'string') return null;
    const out: DeviceRecord = { deviceId: d.deviceId, createdAt: Number(d.createdAt), updatedAt: Number(d.updatedAt ?? d.createdAt) };
    for (const f of ['platform', 'name', 'pushToken', 'voipToken'] as const) {
      const v = d[f];
      if (typeof v === 'string') out[f] = v;
    }
    return out;
  } catch {
    return null;
  }
}
