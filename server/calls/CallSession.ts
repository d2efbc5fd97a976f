import { AppError } from '../../shared/protocol/errors.js';
import type { CallEndReason, CallParty, CallRole, CallState, CallView } from '../../shared/protocol/calls.js';
import { rooms } from '../socket/SocketGateway.js';
import type { CallEndedFact, Disposition, PartyFacts, QualityReport } from './CallEndedFact.js';

/**
 * The 1:1 call state machine: what a call is, which states allow which
 * actions, who may act on it, and what each device is told when it ends.
 * Pure rules; CallStore applies the transitions atomically in Redis.
 *
 *   inviting ──(a callee device is online)──> ringing
 *   inviting | ringing ──accept──> answered ──media connected──> connected
 *   any live state ──> ended (exactly once; the winner of that transition
 *                             schedules the call-ended fact)
 */

export const RINGING_STATES: readonly CallState[] = ['inviting', 'ringing'];
export const ANSWERED_STATES: readonly CallState[] = ['answered', 'connected'];

/** Who ended the call, for the fact. */
export type HangupBy = 'caller' | 'callee' | 'system';

/** The timers a call can have; each is one entry `<callId>|<timer>` in the shared due set. */
export type CallTimer = 'ring' | 'connect' | 'grace:caller' | 'grace:callee' | 'max' | 'fact';
export const CALL_TIMERS: readonly CallTimer[] = ['ring', 'connect', 'grace:caller', 'grace:callee', 'max', 'fact'];

export interface PartyRecord {
  userId: string;
  /** The device the call is bound to: always for the caller, for the callee once a device answered. */
  sessionId: string | undefined;
  deviceId: string | undefined;
  platform: string | undefined;
  appVersion: string | undefined;
  /** Local ICE candidate type this party reported when media connected. */
  iceType: string | undefined;
  quality: QualityReport | undefined;
  media: { audio: boolean; video: boolean } | undefined;
  /** When this party's signaling connection was lost (grace running). */
  lostAt: number | undefined;
}

export interface CallRecord {
  callId: string;
  state: CallState;
  video: boolean;
  caller: PartyRecord;
  callee: PartyRecord;
  createdAt: number;
  ringingAt: number | undefined;
  answeredAt: number | undefined;
  connectedAt: number | undefined;
  endedAt: number | undefined;
  /** When the call stops ringing (epoch ms). */
  ringExpiresAt: number;
  endReason: CallEndReason | undefined;
  hangupBy: HangupBy | undefined;
  /** The callee device that declined (it is told `declined`, the others `declined_elsewhere`). */
  endedBySession: string | undefined;
  /** The callee's devices were told of the call (false for a call refused as busy at once). */
  alerted: boolean;
  /** The call absorbed a crossing invite from the callee. */
  glare: boolean;
  /** The caller named the callee by phone number; otherwise the caller is never shown the callee's number. */
  calleeByPhone: boolean;
  /** When direct media was given up and the relay fallback was asked to take over. */
  fallbackAt: number | undefined;
  relayed: boolean;
  relayNode: string | undefined;
  /** When the call-ended fact was emitted. */
  factAt: number | undefined;
}

/** Hash fields read for a call (the offer SDP is kept apart: it is large and rarely needed). */
export const CALL_FIELDS = [
  'state', 'video', 'createdAt', 'ringingAt', 'answeredAt', 'connectedAt', 'endedAt', 'ringExpiresAt',
  'endReason', 'hangupBy', 'endedBySession', 'alerted', 'glare', 'calleeByPhone', 'fallbackAt', 'relayed', 'relayNode', 'factAt',
  ...(['caller', 'callee'] as const).flatMap((r) => [
    `${r}.user`, `${r}.session`, `${r}.device`, `${r}.platform`, `${r}.appVersion`,
    `${r}.ice`, `${r}.quality`, `${r}.media`, `${r}.lostAt`,
  ]),
] as const;

const num = (v: string | null | undefined): number | undefined => (v === null || v === undefined || v === '' ? undefined : Number(v));
const str = (v: string | null | undefined): string | undefined => (v === null || v === undefined || v === '' ? undefined : v);

function json<T>(v: string | null | undefined): T | undefined {
  if (!v) return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

/** Builds a record from field values (HMGET order of CALL_FIELDS, or a field map); null when the call does not exist. */
export function decodeCall(callId: string, get: (field: string) => string | null | undefined): CallRecord | null {
  const state = get('state');
  if (!state) return null;
  const party = (r: CallRole): PartyRecord => ({
    userId: get(`${r}.user`) ?? '',
    sessionId: str(get(`${r}.session`)),
    deviceId: str(get(`${r}.device`)),
    platform: str(get(`${r}.platform`)),
    appVersion: str(get(`${r}.appVersion`)),
    iceType: str(get(`${r}.ice`)),
    quality: json<QualityReport>(get(`${r}.quality`)),
    media: json<{ audio: boolean; video: boolean }>(get(`${r}.media`)),
    lostAt: num(get(`${r}.lostAt`)),
  });
  return {
    callId,
    state: state as CallState,
    video: get('video') === '1',
    caller: party('caller'),
    callee: party('callee'),
    createdAt: num(get('createdAt')) ?? 0,
    ringingAt: num(get('ringingAt')),
    answeredAt: num(get('answeredAt')),
    connectedAt: num(get('connectedAt')),
    endedAt: num(get('endedAt')),
    ringExpiresAt: num(get('ringExpiresAt')) ?? 0,
    endReason: str(get('endReason')) as CallEndReason | undefined,
    hangupBy: str(get('hangupBy')) as HangupBy | undefined,
    endedBySession: str(get('endedBySession')),
    alerted: get('alerted') === '1',
    glare: get('glare') === '1',
    calleeByPhone: get('calleeByPhone') === '1',
    fallbackAt: num(get('fallbackAt')),
    relayed: get('relayed') === '1',
    relayNode: str(get('relayNode')),
    factAt: num(get('factAt')),
  };
}

export function decodeCallFromFlat(callId: string, flat: string[]): CallRecord | null {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i]!, flat[i + 1]!);
  return decodeCall(callId, (f) => map.get(f));
}

export const otherRole = (role: CallRole): CallRole => (role === 'caller' ? 'callee' : 'caller');

export function isLive(call: CallRecord): boolean {
  return call.state !== 'ended';
}

/** The caller's or callee's role for a user; null for anyone else. */
export function roleOf(call: CallRecord, userId: string): CallRole | null {
  if (call.caller.userId === userId) return 'caller';
  if (call.callee.userId === userId) return 'callee';
  return null;
}

/**
 * Authorization for every call action: a user who is not a party gets the
 * same CALL_NOT_FOUND as for a call that does not exist, so guessing ids
 * teaches nothing.
 */
export function requireParty(call: CallRecord | null, userId: string): { call: CallRecord; role: CallRole } {
  const role = call ? roleOf(call, userId) : null;
  if (!call || !role) throw new AppError('CALL_NOT_FOUND');
  return { call, role };
}

/**
 * Actions that carry media or signaling must come from the party's bound
 * device: the caller's calling device, or the callee device that answered.
 */
export function requireBoundDevice(call: CallRecord, role: CallRole, sessionId: string): void {
  const party = call[role];
  if (party.sessionId === sessionId) return;
  if (role === 'callee' && party.sessionId !== undefined) {
    throw new AppError('CALL_ALREADY_ANSWERED', 'The call was answered on another of your devices');
  }
  if (role === 'callee') throw new AppError('CALL_INVALID_STATE', 'Answer the call first');
  throw new AppError('CALL_INVALID_STATE', 'The call belongs to another of your devices');
}

export function requireNotEnded(call: CallRecord): void {
  if (call.state === 'ended') throw new AppError('CALL_INVALID_STATE', `The call has ended (${call.endReason ?? 'ended'})`);
}

/** The error for an action refused because the call moved on (answered elsewhere, or ended). */
export function stateError(call: CallRecord | null): AppError {
  if (!call) return new AppError('CALL_NOT_FOUND');
  if (call.state === 'ended') return new AppError('CALL_INVALID_STATE', `The call has ended (${call.endReason ?? 'ended'})`);
  if (ANSWERED_STATES.includes(call.state)) return new AppError('CALL_ALREADY_ANSWERED');
  return new AppError('CALL_INVALID_STATE');
}

export function dispositionOf(call: CallRecord): Disposition {
  switch (call.endReason) {
    case 'declined':
    case 'declined_elsewhere':
      return 'DECLINED';
    case 'busy':
      return 'BUSY';
    case 'no_answer':
      return 'NO_ANSWER';
    case 'cancelled':
      return 'CANCELLED';
    default:
      break;
  }
  if (call.answeredAt === undefined) return call.endReason === 'failed' ? 'FAILED' : 'CANCELLED';
  // Answered but media never flowed: the call failed, whoever hung up.
  return call.connectedAt === undefined ? 'FAILED' : 'ANSWERED';
}

function partyFacts(p: PartyRecord, role: 'caller' | 'callee'): PartyFacts {
  const f: PartyFacts = { userId: p.userId, role };
  if (p.platform !== undefined) f.platform = p.platform;
  if (p.appVersion !== undefined) f.appVersion = p.appVersion;
  if (p.quality !== undefined) f.quality = p.quality;
  if (p.iceType !== undefined) f.iceType = p.iceType;
  return f;
}

/** The single fact a call record is made from. */
export function toFact(call: CallRecord): CallEndedFact {
  const fact: CallEndedFact = {
    callId: call.callId,
    kind: call.relayed ? 'relayed' : 'p2p',
    parties: [partyFacts(call.caller, 'caller'), partyFacts(call.callee, 'callee')],
    createdAt: call.createdAt,
    endedAt: call.endedAt ?? Date.now(),
    disposition: dispositionOf(call),
    endReason: call.endReason ?? 'failed',
    hangupBy: call.hangupBy ?? 'system',
    mediaPath: call.connectedAt === undefined ? 'none' : call.relayed ? 'relay' : 'direct',
    participantCount: 2,
  };
  if (call.ringingAt !== undefined) fact.ringingAt = call.ringingAt;
  if (call.answeredAt !== undefined) fact.answeredAt = call.answeredAt;
  if (call.connectedAt !== undefined) fact.connectedAt = call.connectedAt;
  if (call.relayNode !== undefined) fact.relayNode = call.relayNode;
  return fact;
}

export function toView(call: CallRecord, role: CallRole, sessionId: string, peer: CallParty): CallView {
  const peerRecord = call[otherRole(role)];
  return {
    callId: call.callId,
    role,
    state: call.state,
    video: call.video,
    peer,
    thisDevice: call[role].sessionId === sessionId,
    peerConnection: peerRecord.lostAt !== undefined ? 'lost' : 'online',
    peerMedia: peerRecord.media ?? null,
    createdAt: call.createdAt,
    answeredAt: call.answeredAt ?? null,
    connectedAt: call.connectedAt ?? null,
    endReason: call.endReason ?? null,
  };
}

/** One `call:ended` delivery: a room (optionally minus another) and the reason that room is told. */
export interface EndedNotice {
  room: string;
  except?: string;
  reason: CallEndReason;
}

/**
 * Who is told that a call ended, and why, so that every device that knew of
 * the call hears of its end exactly once:
 * - the caller's device: the call's reason;
 * - after an answer, the callee device that answered: the call's reason
 *   (its other devices were told `answered_elsewhere` at the answer);
 * - before an answer, every device of the callee: the call's reason, except
 *   that on a decline the declining device hears `declined` and the others
 *   `declined_elsewhere`;
 * - a callee refused as busy at once never rang, and hears nothing.
 */
export function endedNotices(call: CallRecord): EndedNotice[] {
  const reason = call.endReason ?? 'failed';
  const out: EndedNotice[] = [];
  if (call.caller.sessionId) out.push({ room: rooms.session(call.caller.sessionId), reason });
  if (call.callee.sessionId) {
    out.push({ room: rooms.session(call.callee.sessionId), reason });
  } else if (call.alerted) {
    if (reason === 'declined' && call.endedBySession) {
      out.push({ room: rooms.session(call.endedBySession), reason: 'declined' });
      out.push({ room: rooms.user(call.callee.userId), except: rooms.session(call.endedBySession), reason: 'declined_elsewhere' });
    } else {
      out.push({ room: rooms.user(call.callee.userId), reason });
    }
  }
  return out;
}
