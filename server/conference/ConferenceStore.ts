import type { Redis } from 'ioredis';
import type { ConferenceEndReason } from '../../shared/protocol/conference.js';
import type { CallEndedFact, EndReason } from '../calls/CallEndedFact.js';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';
import {
  decodeConference, decodeParticipant, timerMember,
  type ConferenceRecord, type ConferenceTimer, type ParticipantRecord,
} from './Conference.js';

/**
 * Conferences in Redis. Every transition is one Lua script over the
 * conference's keys and the shared timer set (all under the `{conf}` hash
 * tag), so racing hubs get exactly one winner: one join takes the last free
 * place, one leave writes the leg's fact, one end writes every remaining leg
 * and the conference's fact. Facts wait in a hash until their timer entry is
 * claimed (ZREM inside the claim script), so each is emitted exactly once
 * by whichever hub claims it, even if the hub that wrote it died.
 *
 * The facts hash does not share the conference's expiry: the due entries
 * that point into it never expire, so it keeps FACTS_RETENTION_MS from its
 * last write (an ended conference's other keys go after the ended TTL). A
 * fact whose hubs were all down for longer than that TTL is still there for
 * whichever hub comes back; the hash vanishes once its last fact is claimed.
 *
 * Every script takes the same KEYS: conference, participants, allowed,
 * ringing, everyone, due, facts.
 */

/**
 * How long pending facts wait to be claimed (from the last fact written):
 * long enough to outlast any outage of every hub, bounded so facts nobody
 * will ever claim (their due entry dropped by hand) do not stay forever.
 */
export const FACTS_RETENTION_MS = 7 * 24 * 60 * 60_000;

const PRELUDE = `
local function claim(member, now)
  if member == '' then return true end
  local s = redis.call('ZSCORE', KEYS[6], member)
  if not s or tonumber(s) > tonumber(now) then return false end
  redis.call('ZREM', KEYS[6], member)
  return true
end
-- The conference's own keys; not the due set (6, shared) nor the facts (7, see keepFact).
local function touch(ttl)
  for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
-- A fact waits in the facts hash until its due entry is claimed (CLAIM_FACT).
local function keepFact(id, factId, f, now)
  redis.call('HSET', KEYS[7], factId, cjson.encode(f))
  redis.call('PEXPIRE', KEYS[7], ${FACTS_RETENTION_MS})
  redis.call('ZADD', KEYS[6], now, id .. '|fact:' .. factId)
end
local function leg(id, uid, p, creator, now, reason, hangupBy, relayNode)
  local role = 'participant'
  if uid == creator then role = 'host' end
  if hangupBy == 'self' then hangupBy = role end
  local f = { kind = 'conference-leg', id = p.legId, conferenceId = id, userId = uid, role = role,
    startedAt = p.joinedAt, endedAt = now, endReason = reason, hangupBy = hangupBy,
    platform = p.platform, appVersion = p.appVersion, relayNode = relayNode }
  keepFact(id, p.legId, f, now)
end
local function node(relayNode)
  if relayNode ~= '' then return relayNode end
  return redis.call('HGET', KEYS[1], 'relayNode') or nil
end
-- Ends the conference: a leg for every remaining participant, the
-- conference's own fact, timers and invitations dropped, keys kept for a while
-- (the facts keep their own, longer expiry).
local function finish(id, now, reason, confHangup, byUser, byReason, othersReason, othersHangup, relayNode, endedTtl)
  local c = redis.call('HMGET', KEYS[1], 'creator', 'createdAt')
  relayNode = node(relayNode)
  local parts = redis.call('HGETALL', KEYS[2])
  for i = 1, #parts, 2 do
    local uid = parts[i]
    local r, h = othersReason, othersHangup
    if uid == byUser then r, h = byReason, 'self' end
    leg(id, uid, cjson.decode(parts[i + 1]), c[1], now, r, h, relayNode)
    redis.call('ZREM', KEYS[6], id .. '|grace:' .. uid)
  end
  local ringing = redis.call('HKEYS', KEYS[4])
  for _, uid in ipairs(ringing) do redis.call('ZREM', KEYS[6], id .. '|ring:' .. uid) end
  redis.call('ZREM', KEYS[6], id .. '|max')
  redis.call('DEL', KEYS[2], KEYS[4])
  redis.call('HSET', KEYS[1], 'state', 'ended', 'endedAt', now, 'endReason', reason)
  local f = { kind = 'conference', id = id, conferenceId = id, userId = c[1], role = 'host', startedAt = c[2],
    endedAt = now, endReason = 'completed', hangupBy = confHangup,
    participantCount = redis.call('SCARD', KEYS[5]), relayNode = relayNode }
  keepFact(id, 'conf', f, now)
  touch(endedTtl)
  return parts, ringing
end
`;

const CREATE = new LuaScript(PRELUDE + `
-- ARGV: id, now, host, video, max, fromCallId, maxDue, ttl, relayNode, then (userId, participant JSON) pairs
if redis.call('EXISTS', KEYS[1]) == 1 then return cjson.encode({ status = 'exists' }) end
local id, now = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'state', 'active', 'host', ARGV[3], 'creator', ARGV[3], 'createdAt', now,
  'video', ARGV[4], 'max', ARGV[5], 'legSeq', '0')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'fromCallId', ARGV[6]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'relayNode', ARGV[9]) end
for i = 10, #ARGV, 2 do
  local p = cjson.decode(ARGV[i + 1])
  p.legId = id .. '-L' .. redis.call('HINCRBY', KEYS[1], 'legSeq', 1)
  p.joinedAt = now
  redis.call('HSET', KEYS[2], ARGV[i], cjson.encode(p))
  redis.call('SADD', KEYS[3], ARGV[i])
  redis.call('SADD', KEYS[5], ARGV[i])
end
redis.call('ZADD', KEYS[6], ARGV[7], id .. '|max')
touch(ARGV[8])
return cjson.encode({ status = 'ok' })
`);

const INVITE = new LuaScript(PRELUDE + `
-- ARGV: id, inviter, now, expiresAt, ttl, userIds...
local c = redis.call('HMGET', KEYS[1], 'state', 'max')
if not c[1] then return cjson.encode({ status = 'not_found' }) end
if c[1] ~= 'active' then return cjson.encode({ status = 'ended' }) end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return cjson.encode({ status = 'not_participant' }) end
local fresh = 0
for i = 6, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 and redis.call('HEXISTS', KEYS[4], ARGV[i]) == 0 then fresh = fresh + 1 end
end
if redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[4]) + fresh > tonumber(c[2]) then
  return cjson.encode({ status = 'full' })
end
local rung = {}
for i = 6, #ARGV do
  local uid = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], uid) == 0 then
    redis.call('HSET', KEYS[4], uid, cjson.encode({ invitedBy = ARGV[2], invitedAt = ARGV[3], expiresAt = ARGV[4] }))
    redis.call('SADD', KEYS[3], uid)
    redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1] .. '|ring:' .. uid)
    table.insert(rung, uid)
  end
end
touch(ARGV[5])
return cjson.encode({ status = 'ok', rung = rung })
`);

const JOIN = new LuaScript(PRELUDE + `
-- ARGV: id, userId, session, device, now, platform, appVersion, ttl
local id, uid = ARGV[1], ARGV[2]
local c = redis.call('HMGET', KEYS[1], 'state', 'max')
if not c[1] then return cjson.encode({ status = 'not_found' }) end
local cur = redis.call('HGET', KEYS[2], uid)
if not cur and redis.call('SISMEMBER', KEYS[3], uid) == 0 then return cjson.encode({ status = 'not_found' }) end
if c[1] ~= 'active' then return cjson.encode({ status = 'ended' }) end
if cur then
  local p = cjson.decode(cur)
  local prevSession, prevDevice, wasLost = p.sessionId, p.deviceId, p.lostAt ~= nil
  p.sessionId, p.deviceId, p.lostAt = ARGV[3], ARGV[4], nil
  if ARGV[6] ~= '' then p.platform, p.appVersion = ARGV[6], ARGV[7] end
  redis.call('HSET', KEYS[2], uid, cjson.encode(p))
  redis.call('ZREM', KEYS[6], id .. '|grace:' .. uid)
  touch(ARGV[8])
  local status = 'moved'
  if prevSession == ARGV[3] then status = 'already' end
  return cjson.encode({ status = status, prevSession = prevSession, prevDevice = prevDevice, wasLost = wasLost })
end
if redis.call('HLEN', KEYS[2]) >= tonumber(c[2]) then return cjson.encode({ status = 'full' }) end
local p = { sessionId = ARGV[3], deviceId = ARGV[4], joinedAt = ARGV[5],
  legId = id .. '-L' .. redis.call('HINCRBY', KEYS[1], 'legSeq', 1) }
if ARGV[6] ~= '' then p.platform, p.appVersion = ARGV[6], ARGV[7] end
redis.call('HSET', KEYS[2], uid, cjson.encode(p))
redis.call('SADD', KEYS[5], uid)
local wasRinging = redis.call('HDEL', KEYS[4], uid) == 1
redis.call('ZREM', KEYS[6], id .. '|ring:' .. uid)
touch(ARGV[8])
return cjson.encode({ status = 'joined', wasRinging = wasRinging })
`);

const LEAVE = new LuaScript(PRELUDE + `
-- ARGV: id, userId, now, mode (leave | remove | lost | erase), legReason, legHangupBy, claimMember,
--       requireHost, relayNode, ttl, endedTtl
local id, uid, now, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not claim(ARGV[7], now) then return cjson.encode({ status = 'unclaimed' }) end
local c = redis.call('HMGET', KEYS[1], 'state', 'host', 'creator')
if not c[1] then return cjson.encode({ status = 'not_found' }) end
if c[1] ~= 'active' then return cjson.encode({ status = 'ended' }) end
if ARGV[8] ~= '' and c[2] ~= ARGV[8] then return cjson.encode({ status = 'not_host' }) end
local revoke = mode == 'remove' or mode == 'erase'
local cur = redis.call('HGET', KEYS[2], uid)
if not cur then
  if not revoke then return cjson.encode({ status = 'not_participant' }) end
  local wasRinging = redis.call('HDEL', KEYS[4], uid) == 1
  local wasAllowed = redis.call('SREM', KEYS[3], uid) == 1
  redis.call('ZREM', KEYS[6], id .. '|ring:' .. uid)
  return cjson.encode({ status = 'revoked', wasRinging = wasRinging, wasAllowed = wasAllowed })
end
local p = cjson.decode(cur)
if mode == 'lost' and p.lostAt == nil then return cjson.encode({ status = 'condition' }) end
redis.call('HDEL', KEYS[2], uid)
redis.call('ZREM', KEYS[6], id .. '|grace:' .. uid)
if revoke then redis.call('SREM', KEYS[3], uid) end
local relayNode = node(ARGV[9])
leg(id, uid, p, c[3], now, ARGV[5], ARGV[6], relayNode)
if redis.call('HLEN', KEYS[2]) == 0 then
  local confHangup = 'system'
  if mode == 'leave' then
    confHangup = 'participant'
    if uid == c[3] then confHangup = 'host' end
  end
  local _, ringing = finish(id, now, 'empty', confHangup, '', '', '', '', ARGV[9], ARGV[11])
  return cjson.encode({ status = 'ok', participant = p, ended = true, ringing = ringing })
end
local newHost = ''
if c[2] == uid then
  local parts = redis.call('HGETALL', KEYS[2])
  local best, bestAt = nil, nil
  for i = 1, #parts, 2 do
    local q = cjson.decode(parts[i + 1])
    local at = tonumber(q.joinedAt)
    if not best or at < bestAt or (at == bestAt and parts[i] < best) then best, bestAt = parts[i], at end
  end
  newHost = best
  redis.call('HSET', KEYS[1], 'host', newHost)
end
touch(ARGV[10])
return cjson.encode({ status = 'ok', participant = p, ended = false, newHost = newHost })
`);

const END = new LuaScript(PRELUDE + `
-- ARGV: id, now, reason, confHangup, byUser, byReason, othersReason, othersHangup, claimMember, requireHost, relayNode, endedTtl
local id, now = ARGV[1], ARGV[2]
if not claim(ARGV[9], now) then return cjson.encode({ status = 'unclaimed' }) end
local c = redis.call('HMGET', KEYS[1], 'state', 'host')
if not c[1] then return cjson.encode({ status = 'not_found' }) end
if c[1] ~= 'active' then return cjson.encode({ status = 'ended' }) end
if ARGV[10] ~= '' and c[2] ~= ARGV[10] then return cjson.encode({ status = 'not_host' }) end
local parts, ringing = finish(id, now, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[11], ARGV[12])
return cjson.encode({ status = 'ok', participants = parts, ringing = ringing })
`);

const UNRING = new LuaScript(PRELUDE + `
-- ARGV: id, userId, now, claimMember. Stops an invitation ringing (decline, ring timeout).
if not claim(ARGV[4], ARGV[3]) then return -1 end
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
redis.call('ZREM', KEYS[6], ARGV[1] .. '|ring:' .. ARGV[2])
return redis.call('HDEL', KEYS[4], ARGV[2])
`);

const LOST = new LuaScript(PRELUDE + `
-- ARGV: id, userId, session, now, graceDue
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur then return 0 end
local p = cjson.decode(cur)
if p.sessionId ~= ARGV[3] or p.lostAt ~= nil then return 0 end
p.lostAt = ARGV[4]
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(p))
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[1] .. '|grace:' .. ARGV[2])
return 1
`);

const BACK = new LuaScript(PRELUDE + `
-- ARGV: id, userId, session
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if not cur then return 0 end
local p = cjson.decode(cur)
if p.sessionId ~= ARGV[3] or p.lostAt == nil then return 0 end
p.lostAt = nil
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(p))
redis.call('ZREM', KEYS[6], ARGV[1] .. '|grace:' .. ARGV[2])
return 1
`);

const CLAIM_FACT = new LuaScript(PRELUDE + `
-- ARGV: member, factId, now. 'missing': the entry was claimed but its fact is
-- gone (expired or deleted by hand), so it can never be emitted.
if not claim(ARGV[1], ARGV[3]) then return {'unclaimed'} end
local f = redis.call('HGET', KEYS[7], ARGV[2])
if not f then return {'missing'} end
-- Removing the last fact removes the hash itself (Redis keeps no empty hash).
redis.call('HDEL', KEYS[7], ARGV[2])
return {'ok', f}
`);

export interface ConferenceStoreOptions {
  /** How long a running conference's keys live after their last change (the max-duration timer ends it first). */
  activeTtlMs: number;
  /** How long an ended conference stays readable. */
  endedTtlMs: number;
}

export type CreateResult = 'ok' | 'exists';
export type InviteResult = { status: 'ok'; rung: string[] } | { status: 'not_found' | 'ended' | 'not_participant' | 'full' };
export type JoinResult =
  | { status: 'joined'; wasRinging: boolean }
  | { status: 'already'; wasLost: boolean }
  | { status: 'moved'; prevSession: string; prevDevice: string }
  | { status: 'not_found' | 'ended' | 'full' };
export type LeaveMode = 'leave' | 'remove' | 'lost' | 'erase';
export type LeaveResult =
  | { status: 'ok'; participant: ParticipantRecord; ended: false; newHost: string | undefined }
  | { status: 'ok'; participant: ParticipantRecord; ended: true; ringing: string[] }
  | { status: 'revoked'; wasRinging: boolean; wasAllowed: boolean }
  | { status: 'unclaimed' | 'not_found' | 'ended' | 'not_host' | 'not_participant' | 'condition' };
/** `missing`: the due entry was claimed but its fact had expired or been deleted; it is lost. */
export type ClaimFactResult = { status: 'ok'; raw: string } | { status: 'unclaimed' } | { status: 'missing' };
export type EndResult =
  | { status: 'ok'; participants: ParticipantRecord[]; ringing: string[] }
  | { status: 'unclaimed' | 'not_found' | 'ended' | 'not_host' };

export interface InitialParticipant {
  userId: string;
  sessionId: string;
  deviceId: string;
  platform: string | undefined;
  appVersion: string | undefined;
}

/** Lua's cjson writes an empty array as an object. */
const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export class ConferenceStore {
  readonly #redis: Redis;
  readonly #opts: ConferenceStoreOptions;

  constructor(redis: Redis, opts: ConferenceStoreOptions) {
    this.#redis = redis;
    this.#opts = opts;
  }

  /** Reads a conference, and whether a user may join it (invited or participant, not removed). */
  async get(conferenceId: string, userId?: string): Promise<{ conf: ConferenceRecord | null; allowed: boolean }> {
    const m = this.#redis.multi()
      .hgetall(keys.conference(conferenceId))
      .hgetall(keys.conferenceParticipants(conferenceId))
      .hgetall(keys.conferenceRinging(conferenceId));
    if (userId !== undefined) m.sismember(keys.conferenceAllowed(conferenceId), userId);
    const res = (await m.exec()) ?? [];
    const val = <T>(i: number, fallback: T): T => {
      const r = res[i];
      if (!r || r[0]) return fallback;
      return r[1] as T;
    };
    const conf = decodeConference(conferenceId, val(0, {}), val(1, {}), val(2, {}));
    return { conf, allowed: userId !== undefined && val<number>(3, 0) === 1 };
  }

  async create(p: {
    conferenceId: string; now: number; hostId: string; video: boolean; max: number; fromCallId: string | undefined;
    maxDueAt: number; relayNode: string; participants: InitialParticipant[];
  }): Promise<CreateResult> {
    const pairs = p.participants.flatMap((x) => [x.userId, JSON.stringify({
      sessionId: x.sessionId, deviceId: x.deviceId,
      ...(x.platform ? { platform: x.platform, appVersion: x.appVersion } : {}),
    })]);
    const r = await this.#run(CREATE, p.conferenceId,
      [p.conferenceId, p.now, p.hostId, p.video ? '1' : '0', p.max, p.fromCallId ?? '', p.maxDueAt, this.#opts.activeTtlMs, p.relayNode, ...pairs]);
    return r.status === 'ok' ? 'ok' : 'exists';
  }

  /** Rings users (participants are skipped); `full` when participants plus ringing invitations would pass the maximum. */
  async invite(conferenceId: string, inviterId: string, userIds: string[], now: number, expiresAt: number): Promise<InviteResult> {
    const r = await this.#run(INVITE, conferenceId, [conferenceId, inviterId, now, expiresAt, this.#opts.activeTtlMs, ...userIds]);
    if (r.status === 'ok') return { status: 'ok', rung: list(r.rung) };
    return { status: r.status as 'not_found' | 'ended' | 'not_participant' | 'full' };
  }

  async join(conferenceId: string, p: {
    userId: string; sessionId: string; deviceId: string; now: number; platform: string | undefined; appVersion: string | undefined;
  }): Promise<JoinResult> {
    const r = await this.#run(JOIN, conferenceId,
      [conferenceId, p.userId, p.sessionId, p.deviceId, p.now, p.platform ?? '', p.appVersion ?? '', this.#opts.activeTtlMs]);
    switch (r.status) {
      case 'joined':
        return { status: 'joined', wasRinging: r.wasRinging === true };
      case 'already':
        return { status: 'already', wasLost: r.wasLost === true };
      case 'moved':
        return { status: 'moved', prevSession: String(r.prevSession), prevDevice: String(r.prevDevice) };
      default:
        return { status: r.status as 'not_found' | 'ended' | 'full' };
    }
  }

  /**
   * Takes a user out: a participant's leg ends (its fact is written), a
   * leaving host hands over to the earliest joiner, the last participant
   * out ends the conference. `remove` and `erase` also withdraw the user's
   * right to join (and a ringing invitation: `revoked`).
   */
  async leave(conferenceId: string, p: {
    userId: string; now: number; mode: LeaveMode; legReason: EndReason; legHangupBy: CallEndedFact['hangupBy'] | 'self';
    timer?: ConferenceTimer; requireHost?: string; relayNode: string;
  }): Promise<LeaveResult> {
    const r = await this.#run(LEAVE, conferenceId, [
      conferenceId, p.userId, p.now, p.mode, p.legReason, p.legHangupBy, p.timer ? timerMember(conferenceId, p.timer) : '',
      p.requireHost ?? '', p.relayNode, this.#opts.activeTtlMs, this.#opts.endedTtlMs,
    ]);
    switch (r.status) {
      case 'ok': {
        const participant = decodeParticipant(p.userId, JSON.stringify(r.participant));
        if (!participant) throw new Error('conference leave returned a malformed participant');
        if (r.ended === true) return { status: 'ok', participant, ended: true, ringing: list(r.ringing) };
        return { status: 'ok', participant, ended: false, newHost: typeof r.newHost === 'string' && r.newHost !== '' ? r.newHost : undefined };
      }
      case 'revoked':
        return { status: 'revoked', wasRinging: r.wasRinging === true, wasAllowed: r.wasAllowed === true };
      default:
        return { status: r.status as 'unclaimed' | 'not_found' | 'ended' | 'not_host' | 'not_participant' | 'condition' };
    }
  }

  async end(conferenceId: string, p: {
    now: number; reason: ConferenceEndReason; confHangup: CallEndedFact['hangupBy']; byUser: string;
    byReason: EndReason; othersReason: EndReason; othersHangup: CallEndedFact['hangupBy'];
    timer?: ConferenceTimer; requireHost?: string; relayNode: string;
  }): Promise<EndResult> {
    const r = await this.#run(END, conferenceId, [
      conferenceId, p.now, p.reason, p.confHangup, p.byUser, p.byReason, p.othersReason, p.othersHangup,
      p.timer ? timerMember(conferenceId, p.timer) : '', p.requireHost ?? '', p.relayNode, this.#opts.endedTtlMs,
    ]);
    if (r.status !== 'ok') return { status: r.status as 'unclaimed' | 'not_found' | 'ended' | 'not_host' };
    const flat = list(r.participants);
    const participants: ParticipantRecord[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const part = decodeParticipant(flat[i]!, flat[i + 1]!);
      if (part) participants.push(part);
    }
    return { status: 'ok', participants, ringing: list(r.ringing) };
  }

  /** Stops an invitation ringing: true if it rang. With a timer, only if that timer is due (and it is consumed). */
  async unring(conferenceId: string, userId: string, now: number, timer?: ConferenceTimer): Promise<boolean> {
    const r = await this.#runRaw(UNRING, conferenceId, [conferenceId, userId, now, timer ? timerMember(conferenceId, timer) : '']);
    return Number(r) === 1;
  }

  /** Marks a participant's device gone and starts its grace timer; false if it is not that participant's device or already lost. */
  async lost(conferenceId: string, userId: string, sessionId: string, now: number, graceDueAt: number): Promise<boolean> {
    return Number(await this.#runRaw(LOST, conferenceId, [conferenceId, userId, sessionId, now, graceDueAt])) === 1;
  }

  /** Clears a participant's lost mark (its device is back); true if it was lost. */
  async back(conferenceId: string, userId: string, sessionId: string): Promise<boolean> {
    return Number(await this.#runRaw(BACK, conferenceId, [conferenceId, userId, sessionId])) === 1;
  }

  /** Claims a pending fact through its due timer entry: the one winner gets it (`unclaimed`: not due, or another hub won). */
  async claimFact(conferenceId: string, factId: string, now: number): Promise<ClaimFactResult> {
    const r = await this.#runRaw(CLAIM_FACT, conferenceId, [timerMember(conferenceId, { kind: 'fact', factId }), factId, now]);
    if (!Array.isArray(r) || typeof r[0] !== 'string') throw new Error('conference fact claim returned an unexpected value');
    if (r[0] === 'ok' && typeof r[1] === 'string') return { status: 'ok', raw: r[1] };
    if (r[0] === 'unclaimed') return { status: 'unclaimed' };
    if (r[0] === 'missing') return { status: 'missing' };
    throw new Error('conference fact claim returned an unexpected value');
  }

  /** Removes a conference that never got going (the 1:1 call it was to replace ended meanwhile). */
  async discard(conferenceId: string): Promise<void> {
    const { conf } = await this.get(conferenceId);
    const m = this.#redis.multi().del(...this.#keys(conferenceId).filter((_, i) => i !== 5));
    m.zrem(keys.conferenceTimers(), timerMember(conferenceId, { kind: 'max' }));
    for (const p of conf?.participants ?? []) m.zrem(keys.conferenceTimers(), timerMember(conferenceId, { kind: 'grace', userId: p.userId }));
    await m.exec();
  }

  // ---- A user's conferences (a lookup aid: readers re-check each conference) ----

  async index(userId: string, conferenceId: string): Promise<void> {
    const key = keys.userConferences(userId);
    await this.#redis.multi().sadd(key, conferenceId).pexpire(key, this.#opts.activeTtlMs).exec();
  }

  async unindex(userId: string, conferenceId: string): Promise<void> {
    await this.#redis.srem(keys.userConferences(userId), conferenceId);
  }

  conferencesOf(userId: string): Promise<string[]> {
    return this.#redis.smembers(keys.userConferences(userId));
  }

  async forgetUser(userId: string): Promise<void> {
    await this.#redis.del(keys.userConferences(userId));
  }

  // ---- Timers ----

  async dueTimers(now: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(keys.conferenceTimers(), '-inf', now, 'LIMIT', 0, limit);
  }

  async dropTimer(member: string): Promise<void> {
    await this.#redis.zrem(keys.conferenceTimers(), member);
  }

  #keys(conferenceId: string): string[] {
    return [
      keys.conference(conferenceId), keys.conferenceParticipants(conferenceId), keys.conferenceAllowed(conferenceId),
      keys.conferenceRinging(conferenceId), keys.conferenceEveryone(conferenceId), keys.conferenceTimers(),
      keys.conferenceFacts(conferenceId),
    ];
  }

  #runRaw(script: LuaScript, conferenceId: string, args: (string | number)[]): Promise<unknown> {
    return script.run(this.#redis, this.#keys(conferenceId), args);
  }

  async #run(script: LuaScript, conferenceId: string, args: (string | number)[]): Promise<Record<string, unknown> & { status: string }> {
    const raw = await this.#runRaw(script, conferenceId, args);
    const parsed: unknown = typeof raw === 'string' ? JSON.parse(raw) : null;
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as { status?: unknown }).status !== 'string') {
      throw new Error('conference script returned an unexpected value');
    }
    return parsed as Record<string, unknown> & { status: string };
  }
}
