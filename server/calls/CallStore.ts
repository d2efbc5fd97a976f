import type { Redis } from 'ioredis';
import type { CallEndReason, CallRole, CallState, IceCandidate } from '../../shared/protocol/calls.js';
import { keys } from '../keys.js';
import { LuaScript } from '../LuaScript.js';
import {
  CALL_FIELDS, CALL_TIMERS, decodeCall, decodeCallFromFlat,
  type CallRecord, type CallTimer, type HangupBy,
} from './CallSession.js';

/**
 * Calls in Redis. Every transition is one Lua script over the call hash, the
 * shared timer set and, where it matters, both parties' busy slots, so two
 * hub processes racing on the same call (two devices accepting, a hangup
 * against a ring timeout) always produce exactly one winner. All call keys
 * share the `{calls}` hash tag (see keys.ts).
 */

export const timerMember = (callId: string, timer: CallTimer): string => `${callId}|${timer}`;

export function parseTimerMember(member: string): { callId: string; timer: CallTimer } | null {
  const i = member.indexOf('|');
  if (i <= 0) return null;
  const timer = member.slice(i + 1) as CallTimer;
  if (!CALL_TIMERS.includes(timer)) return null;
  return { callId: member.slice(0, i), timer };
}

/** A pre-answer signal from the caller, kept for callee devices that come online while ringing. */
export type EarlySignal = { type: 'candidate'; candidate: IceCandidate } | { type: 'end-of-candidates' };

/** Claims a due timer entry: it must still be due (not rescheduled later) and is removed; else the script returns. */
const CLAIM = `
local function claim(dueKey, member, now)
  if member == '' then return true end
  local s = redis.call('ZSCORE', dueKey, member)
  if not s or tonumber(s) > tonumber(now) then return false end
  redis.call('ZREM', dueKey, member)
  return true
end
local function allowed(list, state)
  return list == '*' or string.find(list, ',' .. state .. ',', 1, true) ~= nil
end
`;

const INVITE = new LuaScript(`
-- KEYS: callerSlot, calleeSlot, newCall, due, callerCurCall, calleeCurCall, callerCalls, calleeCalls
local cid = ARGV[1]
-- Each party's index of the calls naming them (for account erasure), trimmed to what can still exist.
local function index()
  for _, k in ipairs({KEYS[7], KEYS[8]}) do
    redis.call('ZADD', k, ARGV[4], cid)
    redis.call('ZREMRANGEBYSCORE', k, '-inf', tonumber(ARGV[4]) - tonumber(ARGV[21]))
    redis.call('PEXPIRE', k, ARGV[21])
  end
end
local curCaller = redis.call('GET', KEYS[1]) or ''
local curCallee = redis.call('GET', KEYS[2]) or ''
if curCaller ~= ARGV[2] or curCallee ~= ARGV[3] then return {'retry'} end
local now = ARGV[4]
local callerId, calleeId = ARGV[11], ARGV[12]
if curCaller ~= '' then
  local z = redis.call('HMGET', KEYS[5], 'state', 'caller.user', 'callee.user')
  local st = z[1]
  if st and st ~= 'ended' then
    if (st == 'inviting' or st == 'ringing') and z[2] == calleeId and z[3] == callerId then
      -- Glare: the callee is already calling us. Our invite answers their call on this device.
      redis.call('HSET', KEYS[5], 'state', 'answered', 'answeredAt', now, 'glare', '1',
        'callee.session', ARGV[13], 'callee.device', ARGV[14])
      if ARGV[17] ~= '' then redis.call('HSET', KEYS[5], 'callee.platform', ARGV[17], 'callee.appVersion', ARGV[18]) end
      redis.call('ZREM', KEYS[4], curCaller .. '|ring')
      redis.call('ZADD', KEYS[4], ARGV[7], curCaller .. '|connect')
      return {'glare', curCaller}
    end
    return {'caller_busy', curCaller}
  end
end
local fields = {'state', 'inviting', 'video', ARGV[15], 'createdAt', now, 'ringExpiresAt', ARGV[5],
  'caller.user', callerId, 'caller.session', ARGV[13], 'caller.device', ARGV[14], 'callee.user', calleeId, 'hubId', ARGV[19]}
if ARGV[20] == '1' then table.insert(fields, 'calleeByPhone'); table.insert(fields, '1') end
if ARGV[17] ~= '' then
  table.insert(fields, 'caller.platform'); table.insert(fields, ARGV[17])
  table.insert(fields, 'caller.appVersion'); table.insert(fields, ARGV[18])
end
if curCallee ~= '' then
  local st = redis.call('HGET', KEYS[6], 'state')
  if st and st ~= 'ended' then
    fields[2] = 'ended'
    for _, v in ipairs({'endedAt', now, 'endReason', 'busy', 'hangupBy', 'system'}) do table.insert(fields, v) end
    redis.call('HSET', KEYS[3], unpack(fields))
    redis.call('PEXPIRE', KEYS[3], ARGV[10])
    redis.call('ZADD', KEYS[4], ARGV[9], cid .. '|fact')
    index()
    return {'busy', curCallee}
  end
end
table.insert(fields, 'alerted'); table.insert(fields, '1')
redis.call('HSET', KEYS[3], unpack(fields))
if ARGV[16] ~= '' then redis.call('HSET', KEYS[3], 'offer', ARGV[16]) end
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('SET', KEYS[1], cid, 'PX', ARGV[6])
redis.call('SET', KEYS[2], cid, 'PX', ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[5], cid .. '|ring', ARGV[8], cid .. '|max')
index()
return {'created'}
`);

const MARK_RINGING = new LuaScript(`
-- KEYS: call, ringing. ARGV: now, ttlMs, session...
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'inviting' and st ~= 'ringing' then return -1 end
if #ARGV < 3 then return 0 end
redis.call('SADD', KEYS[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if st == 'inviting' then
  redis.call('HSET', KEYS[1], 'state', 'ringing', 'ringingAt', ARGV[1])
  return 1
end
return 0
`);

const ACCEPT = new LuaScript(`
-- KEYS: call, due, ringing, early
local c = redis.call('HMGET', KEYS[1], 'state', 'callee.user', 'callee.session')
if not c[1] or c[2] ~= ARGV[2] then return 'not_found' end
if c[1] == 'ended' then return 'ended' end
if c[1] == 'answered' or c[1] == 'connected' then
  if c[3] == ARGV[3] then return 'mine' end
  return 'answered'
end
redis.call('HSET', KEYS[1], 'state', 'answered', 'answeredAt', ARGV[5], 'callee.session', ARGV[3], 'callee.device', ARGV[4])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'callee.platform', ARGV[7], 'callee.appVersion', ARGV[8]) end
redis.call('ZREM', KEYS[2], ARGV[1] .. '|ring')
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1] .. '|connect')
redis.call('DEL', KEYS[3], KEYS[4])
return 'ok'
`);

const CONNECTED = new LuaScript(`
-- KEYS: call, due. ARGV: callId, role, iceType, now
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'answered' and st ~= 'connected' then return st or 'not_found' end
redis.call('HSET', KEYS[1], ARGV[2] .. '.ice', ARGV[3])
if st == 'answered' then
  redis.call('HSET', KEYS[1], 'state', 'connected')
  redis.call('HSETNX', KEYS[1], 'connectedAt', ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1] .. '|connect')
  return 'connected'
end
return 'recorded'
`);

const END = new LuaScript(CLAIM + `
-- KEYS: call, due, callerSlot, calleeSlot, ringing, early
-- ARGV: callId, reason, hangupBy, now, allowed, dueMember, requireField, requireNoRinging, endedBySession, factDue, endedTtlMs
local cid = ARGV[1]
if not claim(KEYS[2], ARGV[6], ARGV[4]) then return {'unclaimed'} end
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'not_found'} end
if st == 'ended' then return {'ended'} end
if not allowed(ARGV[5], st) then return {'state', st} end
if ARGV[7] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[7]) == 0 then return {'condition', st} end
if ARGV[8] == '1' and redis.call('SCARD', KEYS[5]) > 0 then return {'condition', st} end
redis.call('HSET', KEYS[1], 'state', 'ended', 'endedAt', ARGV[4], 'endReason', ARGV[2], 'hangupBy', ARGV[3])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'endedBySession', ARGV[9]) end
redis.call('HDEL', KEYS[1], 'offer')
for _, t in ipairs({'ring', 'connect', 'grace:caller', 'grace:callee', 'max'}) do
  redis.call('ZREM', KEYS[2], cid .. '|' .. t)
end
if redis.call('GET', KEYS[3]) == cid then redis.call('DEL', KEYS[3]) end
if redis.call('GET', KEYS[4]) == cid then redis.call('DEL', KEYS[4]) end
redis.call('DEL', KEYS[5], KEYS[6])
redis.call('ZADD', KEYS[2], ARGV[10], cid .. '|fact')
redis.call('PEXPIRE', KEYS[1], ARGV[11])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out
`);

const LOST = new LuaScript(`
-- KEYS: call, due. ARGV: callId, role, session, now, graceDue
local c = redis.call('HMGET', KEYS[1], 'state', ARGV[2] .. '.session', ARGV[2] .. '.lostAt')
if not c[1] or c[1] == 'ended' or c[2] ~= ARGV[3] or c[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2] .. '.lostAt', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1] .. '|grace:' .. ARGV[2])
return 1
`);

const BACK = new LuaScript(`
-- KEYS: call, due. ARGV: callId, role, session
local c = redis.call('HMGET', KEYS[1], 'state', ARGV[2] .. '.session', ARGV[2] .. '.lostAt')
if not c[1] or c[1] == 'ended' or c[2] ~= ARGV[3] or not c[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2] .. '.lostAt')
redis.call('ZREM', KEYS[2], ARGV[1] .. '|grace:' .. ARGV[2])
return 1
`);

const FALLBACK = new LuaScript(CLAIM + `
-- KEYS: call, due. ARGV: callId, now, dueMember, allowed, hasFallback, newConnectDue
if not claim(KEYS[2], ARGV[3], ARGV[2]) then return 'noop' end
local c = redis.call('HMGET', KEYS[1], 'state', 'fallbackAt')
if not c[1] or not allowed(ARGV[4], c[1]) then return 'noop' end
-- Moving to the relay already: the other party's ICE failure report adds nothing; the connect timer decides.
if c[2] and c[1] == 'answered' and ARGV[3] == '' then return 'noop' end
if ARGV[5] == '1' and not c[2] then
  redis.call('HSET', KEYS[1], 'fallbackAt', ARGV[2], 'state', 'answered')
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1] .. '|connect')
  return 'fallback'
end
return 'fail'
`);

const SET_FIELDS = new LuaScript(`
-- KEYS: call. ARGV: mode (live | report), field, value, ...
local c = redis.call('HMGET', KEYS[1], 'state', 'factAt')
if not c[1] then return 0 end
if c[1] == 'ended' and (ARGV[1] ~= 'report' or c[2]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
`);

const PUSH_EARLY = new LuaScript(`
-- KEYS: call, early. ARGV: item, max, ttlMs
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'inviting' and st ~= 'ringing' then return -1 end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`);

const CLAIM_FACT = new LuaScript(CLAIM + `
-- KEYS: call, due. ARGV: member, now
if not claim(KEYS[2], ARGV[1], ARGV[2]) then return {'unclaimed'} end
local c = redis.call('HMGET', KEYS[1], 'state', 'factAt')
-- Claimed, but the call's hash expired first (no hub ran for the whole ended retention): the record is lost.
if not c[1] then return {'missing'} end
if c[1] ~= 'ended' or c[2] then return {'gone'} end
redis.call('HSET', KEYS[1], 'factAt', ARGV[2])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out
`);

/**
 * Account erasure of one call record naming the user: an ended call's keys
 * are deleted; if its fact is still pending (the final-report window), the
 * fact is claimed now (the timer entry removed, factAt set) and the record
 * returned so the caller emits it at once. A live call is left alone
 * (`live`: end it first).
 */
const ERASE = new LuaScript(`
-- KEYS: call, due, early, ringing. ARGV: callId, userId, now
local c = redis.call('HMGET', KEYS[1], 'state', 'factAt', 'caller.user', 'callee.user')
if not c[1] or (c[3] ~= ARGV[2] and c[4] ~= ARGV[2]) then return {'gone'} end
if c[1] ~= 'ended' then return {'live'} end
local out = {'erased'}
if not c[2] then
  redis.call('ZREM', KEYS[2], ARGV[1] .. '|fact')
  redis.call('HSET', KEYS[1], 'factAt', ARGV[3])
  out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, 'fact')
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
return out
`);

export interface InviteParams {
  callId: string;
  callerId: string;
  calleeId: string;
  callerSession: string;
  callerDevice: string;
  video: boolean;
  offer: string | undefined;
  platform: string | undefined;
  appVersion: string | undefined;
  hubId: string;
  /** The caller named the callee by phone number (so the callee's number may be shown to the caller). */
  calleeByPhone: boolean;
  now: number;
  ringDueAt: number;
  connectDueAt: number;
  maxDueAt: number;
  factDueAt: number;
}

export type InviteResult =
  | { kind: 'created' }
  | { kind: 'busy'; otherCallId: string }
  | { kind: 'glare'; callId: string }
  | { kind: 'caller_busy'; otherCallId: string };

export interface EndParams {
  reason: CallEndReason;
  hangupBy: HangupBy;
  /** States the call may be in for this end to apply; '*' for any live state. */
  allowed: readonly CallState[] | '*';
  /** The timer whose firing this is: it must still be due, and is consumed. */
  timer?: CallTimer;
  /** A hash field that must exist (e.g. a party's lostAt for a grace timer). */
  requireField?: string;
  /** Only end if no callee device is ringing any more. */
  requireNoRinging?: boolean;
  endedBySession?: string;
  now: number;
}

export interface CallStoreOptions {
  /** How long an active call's keys live at most (a safety net; the max-duration timer ends calls first). */
  activeTtlMs: number;
  /** How long an ended call stays readable (late requests get CALL_INVALID_STATE rather than CALL_NOT_FOUND). */
  endedTtlMs: number;
  /** Delay between a call's end and its fact (the final quality report window). */
  factDelayMs: number;
}

export class CallStore {
  readonly #redis: Redis;
  readonly #opts: CallStoreOptions;

  constructor(redis: Redis, opts: CallStoreOptions) {
    this.#redis = redis;
    this.#opts = opts;
  }

  async get(callId: string): Promise<CallRecord | null> {
    const values = await this.#redis.hmget(keys.call(callId), ...CALL_FIELDS);
    return decodeCall(callId, (f) => values[CALL_FIELDS.indexOf(f as (typeof CALL_FIELDS)[number])]);
  }

  async offer(callId: string): Promise<string | undefined> {
    return (await this.#redis.hget(keys.call(callId), 'offer')) ?? undefined;
  }

  /** The call a user is in (their busy slot), if any. */
  currentCallId(userId: string): Promise<string | null> {
    return this.#redis.get(keys.userCall(userId));
  }

  /**
   * Creates a call, or resolves it as busy or glare, atomically against both
   * parties' busy slots. The slots are read first and the script re-checks
   * them, so every key it touches is declared; a concurrent change retries.
   */
  async invite(p: InviteParams): Promise<InviteResult> {
    const callerSlot = keys.userCall(p.callerId);
    const calleeSlot = keys.userCall(p.calleeId);
    for (let attempt = 0; attempt < 8; attempt++) {
      const [curCaller, curCallee] = await this.#redis.mget(callerSlot, calleeSlot);
      const newCall = keys.call(p.callId);
      const res = (await INVITE.run(this.#redis,
        [callerSlot, calleeSlot, newCall, keys.callTimers(),
          curCaller ? keys.call(curCaller) : newCall, curCallee ? keys.call(curCallee) : newCall,
          keys.userCalls(p.callerId), keys.userCalls(p.calleeId)],
        [p.callId, curCaller ?? '', curCallee ?? '', p.now, p.ringDueAt, this.#opts.activeTtlMs, p.connectDueAt,
          p.maxDueAt, p.factDueAt, this.#opts.endedTtlMs, p.callerId, p.calleeId, p.callerSession, p.callerDevice,
          p.video ? '1' : '0', p.offer ?? '', p.platform ?? '', p.appVersion ?? '', p.hubId, p.calleeByPhone ? '1' : '',
          this.#opts.activeTtlMs + this.#opts.endedTtlMs])) as string[];
      switch (res[0]) {
        case 'retry':
          continue;
        case 'created':
          return { kind: 'created' };
        case 'busy':
          return { kind: 'busy', otherCallId: res[1]! };
        case 'glare':
          return { kind: 'glare', callId: res[1]! };
        case 'caller_busy':
          return { kind: 'caller_busy', otherCallId: res[1]! };
        default:
          throw new Error(`unexpected invite result ${String(res[0])}`);
      }
    }
    throw new Error('invite kept racing with busy-slot changes');
  }

  /** Records callee devices as ringing; moves `inviting` to `ringing` when there is at least one. */
  async markRinging(callId: string, sessionIds: string[], now: number, ttlMs: number): Promise<'ringing' | 'unchanged' | 'gone'> {
    const r = Number(await MARK_RINGING.run(this.#redis, [keys.call(callId), keys.callRinging(callId)], [now, ttlMs, ...sessionIds]));
    return r === 1 ? 'ringing' : r === 0 ? 'unchanged' : 'gone';
  }

  /** A callee device stops ringing (it reported busy). */
  async stopRinging(callId: string, sessionId: string): Promise<void> {
    await this.#redis.srem(keys.callRinging(callId), sessionId);
  }

  /** First device wins: `ok` for the winner, `mine` if this device had already answered. */
  async accept(p: {
    callId: string; userId: string; sessionId: string; deviceId: string; now: number; connectDueAt: number;
    platform: string | undefined; appVersion: string | undefined;
  }): Promise<'ok' | 'mine' | 'answered' | 'ended' | 'not_found'> {
    return (await ACCEPT.run(this.#redis,
      [keys.call(p.callId), keys.callTimers(), keys.callRinging(p.callId), keys.callEarlySignals(p.callId)],
      [p.callId, p.userId, p.sessionId, p.deviceId, p.now, p.connectDueAt, p.platform ?? '', p.appVersion ?? ''])) as
      'ok' | 'mine' | 'answered' | 'ended' | 'not_found';
  }

  /** Media connected for one party: the first report moves the call to `connected`. */
  async connected(callId: string, role: CallRole, iceType: string, now: number): Promise<'connected' | 'recorded' | string> {
    return (await CONNECTED.run(this.#redis, [keys.call(callId), keys.callTimers()], [callId, role, iceType, now])) as string;
  }

  /**
   * Ends a live call if the conditions hold. Returns the ended record to the
   * single caller that won the transition, null to everyone else. The winner
   * also schedules the call's fact.
   */
  async end(call: Pick<CallRecord, 'callId' | 'caller' | 'callee'>, p: EndParams): Promise<CallRecord | null> {
    const { callId } = call;
    const res = (await END.run(this.#redis,
      [keys.call(callId), keys.callTimers(), keys.userCall(call.caller.userId), keys.userCall(call.callee.userId),
        keys.callRinging(callId), keys.callEarlySignals(callId)],
      [callId, p.reason, p.hangupBy, p.now, p.allowed === '*' ? '*' : `,${p.allowed.join(',')},`,
        p.timer ? timerMember(callId, p.timer) : '', p.requireField ?? '', p.requireNoRinging ? '1' : '0',
        p.endedBySession ?? '', p.now + this.#opts.factDelayMs, this.#opts.endedTtlMs])) as string[];
    if (res[0] !== 'ok') return null;
    return decodeCallFromFlat(callId, res.slice(1));
  }

  /** Marks a party's signaling lost and starts its grace timer; false if it already was, or is not that party. */
  async lost(callId: string, role: CallRole, sessionId: string, now: number, graceDueAt: number): Promise<boolean> {
    return Number(await LOST.run(this.#redis, [keys.call(callId), keys.callTimers()], [callId, role, sessionId, now, graceDueAt])) === 1;
  }

  /** Clears a party's lost mark and its grace timer; true if it was lost. */
  async back(callId: string, role: CallRole, sessionId: string): Promise<boolean> {
    return Number(await BACK.run(this.#redis, [keys.call(callId), keys.callTimers()], [callId, role, sessionId])) === 1;
  }

  /**
   * Direct media failed (connect timer or an ICE-failed report): `fallback`
   * once per call when a relay fallback exists (a new connect deadline is
   * set), `fail` when the call should end failed, `noop` when it moved on.
   */
  async mediaFailed(callId: string, p: {
    now: number; timer?: 'connect'; allowed: readonly CallState[]; hasFallback: boolean; newConnectDueAt: number;
  }): Promise<'fallback' | 'fail' | 'noop'> {
    return (await FALLBACK.run(this.#redis, [keys.call(callId), keys.callTimers()],
      [callId, p.now, p.timer ? timerMember(callId, p.timer) : '', `,${p.allowed.join(',')},`, p.hasFallback ? '1' : '0',
        p.newConnectDueAt])) as 'fallback' | 'fail' | 'noop';
  }

  /**
   * Sets fields of a live call; in `report` mode also of an ended call whose
   * fact is not out yet (final quality reports). False when too late.
   */
  async setFields(callId: string, mode: 'live' | 'report', fields: Record<string, string>): Promise<boolean> {
    const flat = Object.entries(fields).flat();
    return Number(await SET_FIELDS.run(this.#redis, [keys.call(callId)], [mode, ...flat])) === 1;
  }

  /** Keeps a pre-answer caller signal: `ok`, `full`, or `state` when the call is no longer ringing. */
  async pushEarly(callId: string, signal: EarlySignal, max: number, ttlMs: number): Promise<'ok' | 'full' | 'state'> {
    const r = Number(await PUSH_EARLY.run(this.#redis, [keys.call(callId), keys.callEarlySignals(callId)], [JSON.stringify(signal), max, ttlMs]));
    return r === 1 ? 'ok' : r === 0 ? 'full' : 'state';
  }

  async earlySignals(callId: string): Promise<EarlySignal[]> {
    const items = await this.#redis.lrange(keys.callEarlySignals(callId), 0, -1);
    const out: EarlySignal[] = [];
    for (const item of items) {
      try {
        out.push(JSON.parse(item) as EarlySignal);
      } catch {
        // Written by us as JSON; a corrupt entry is skipped rather than failing the ring.
      }
    }
    return out;
  }

  /**
   * Claims the fact timer of an ended call; the one winner gets the final
   * record. `missing`: this hub won the claim but the call's hash had already
   * expired, so its record cannot be written (the caller logs it).
   */
  async claimFact(callId: string, now: number): Promise<CallRecord | 'missing' | null> {
    const res = (await CLAIM_FACT.run(this.#redis, [keys.call(callId), keys.callTimers()], [timerMember(callId, 'fact'), now])) as string[];
    if (res[0] === 'missing') return 'missing';
    if (res[0] !== 'ok') return null;
    return decodeCallFromFlat(callId, res.slice(1));
  }

  /** Ids of the calls whose records may still name the user (see keys.userCalls). */
  callsOf(userId: string): Promise<string[]> {
    return this.#redis.zrange(keys.userCalls(userId), 0, -1);
  }

  /**
   * Erases an ended call naming the user (see ERASE): `fact` with the final
   * record when its fact was still pending and is now the caller's to emit.
   */
  async erase(callId: string, userId: string, now: number): Promise<{ kind: 'gone' | 'live' | 'erased' } | { kind: 'fact'; call: CallRecord }> {
    const res = (await ERASE.run(this.#redis,
      [keys.call(callId), keys.callTimers(), keys.callEarlySignals(callId), keys.callRinging(callId)],
      [callId, userId, now])) as string[];
    if (res[0] === 'fact') {
      const call = decodeCallFromFlat(callId, res.slice(1));
      return call ? { kind: 'fact', call } : { kind: 'erased' };
    }
    return { kind: res[0] as 'gone' | 'live' | 'erased' };
  }

  /** Drops the user's call index and busy slot (after their calls were ended and erased). */
  async forgetUser(userId: string): Promise<void> {
    await this.#redis.del(keys.userCalls(userId), keys.userCall(userId));
  }

  /** Timers due by `now`, oldest first. */
  async dueTimers(now: number, limit: number): Promise<string[]> {
    return this.#redis.zrangebyscore(keys.callTimers(), '-inf', now, 'LIMIT', 0, limit);
  }

  /** Drops a timer entry that can never fire usefully (its call is gone, or it is malformed). */
  async dropTimer(member: string): Promise<void> {
    await this.#redis.zrem(keys.callTimers(), member);
  }
}
