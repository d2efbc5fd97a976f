import { randomBytes } from 'node:crypto';
import type { ConferenceEndReason, ConferenceRole, ConferenceState } from '../../shared/protocol/conference.js';
import type { CallEndedFact, EndReason, PartyFacts } from '../calls/CallEndedFact.js';

/**
 * What a conference is, as stored in Redis and as the rules see it. Pure
 * data and rules; ConferenceStore applies the transitions atomically.
 *
 *   create ──> active ──(host ends | last participant leaves | max duration)──> ended
 *
 * Participants are users, each bound to the one device (session) that
 * joined; joining on another device moves the binding. Each participant's
 * continuous presence (join to leave) is a leg with its own id, whose fact
 * is written in the same script as the leave, and emitted once through the
 * shared timer set.
 */

/** Conference ids: 96-bit random, URL-safe; also the relay room id. */
export const newConferenceId = (): string => `f${randomBytes(12).toString('base64url')}`;

export interface ParticipantRecord {
  userId: string;
  sessionId: string;
  deviceId: string;
  joinedAt: number;
  /** This presence's leg id (`<conferenceId>-L<n>`). */
  legId: string;
  platform: string | undefined;
  appVersion: string | undefined;
  /** When the participant's device went away (grace running). */
  lostAt: number | undefined;
}

export interface InvitationRecord {
  userId: string;
  invitedBy: string;
  invitedAt: number;
  expiresAt: number;
}

export interface ConferenceRecord {
  conferenceId: string;
  state: ConferenceState;
  hostId: string;
  /** Who created it: the host party of the conference's record. */
  creatorId: string;
  createdAt: number;
  video: boolean;
  maxParticipants: number;
  fromCallId: string | undefined;
  endedAt: number | undefined;
  endReason: ConferenceEndReason | undefined;
  relayNode: string | undefined;
  /** Ordered by join time (earliest first). */
  participants: ParticipantRecord[];
  ringing: InvitationRecord[];
}

/** The timers of a conference: one entry `<conferenceId>|<timer>` each in the shared due set. */
export type ConferenceTimer =
  | { kind: 'max' }
  | { kind: 'ring'; userId: string }
  | { kind: 'grace'; userId: string }
  | { kind: 'fact'; factId: string };

export function timerMember(conferenceId: string, t: ConferenceTimer): string {
  switch (t.kind) {
    case 'max':
      return `${conferenceId}|max`;
    case 'ring':
      return `${conferenceId}|ring:${t.userId}`;
    case 'grace':
      return `${conferenceId}|grace:${t.userId}`;
    case 'fact':
      return `${conferenceId}|fact:${t.factId}`;
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseTimerMember(member: string): { conferenceId: string; timer: ConferenceTimer } | null {
  const bar = member.indexOf('|');
  if (bar <= 0) return null;
  const conferenceId = member.slice(0, bar);
  const rest = member.slice(bar + 1);
  if (!ID.test(conferenceId)) return null;
  if (rest === 'max') return { conferenceId, timer: { kind: 'max' } };
  const colon = rest.indexOf(':');
  const kind = rest.slice(0, colon);
  const arg = rest.slice(colon + 1);
  if (colon <= 0 || !ID.test(arg)) return null;
  if (kind === 'ring') return { conferenceId, timer: { kind, userId: arg } };
  if (kind === 'grace') return { conferenceId, timer: { kind, userId: arg } };
  if (kind === 'fact') return { conferenceId, timer: { kind, factId: arg } };
  return null;
}

const num = (v: unknown): number | undefined => {
  if (v === null || v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function parseJson(raw: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function decodeParticipant(userId: string, raw: string): ParticipantRecord | undefined {
  const j = parseJson(raw);
  const sessionId = str(j?.sessionId);
  const deviceId = str(j?.deviceId);
  const legId = str(j?.legId);
  if (!j || !sessionId || !deviceId || !legId) return undefined;
  return {
    userId, sessionId, deviceId, legId,
    joinedAt: num(j.joinedAt) ?? 0,
    platform: str(j.platform),
    appVersion: str(j.appVersion),
    lostAt: num(j.lostAt),
  };
}

function decodeInvitation(userId: string, raw: string): InvitationRecord | undefined {
  const j = parseJson(raw);
  const invitedBy = str(j?.invitedBy);
  if (!j || !invitedBy) return undefined;
  return { userId, invitedBy, invitedAt: num(j.invitedAt) ?? 0, expiresAt: num(j.expiresAt) ?? 0 };
}

/** Builds a record from the conference hash and its participants/ringing hashes; null when it does not exist. */
export function decodeConference(
  conferenceId: string,
  hash: Record<string, string>,
  participants: Record<string, string>,
  ringing: Record<string, string>,
): ConferenceRecord | null {
  if (!hash.state) return null;
  const parts = Object.entries(participants)
    .map(([uid, raw]) => decodeParticipant(uid, raw))
    .filter((p): p is ParticipantRecord => p !== undefined)
    .sort((a, b) => a.joinedAt - b.joinedAt || a.legId.localeCompare(b.legId));
  const invites = Object.entries(ringing)
    .map(([uid, raw]) => decodeInvitation(uid, raw))
    .filter((i): i is InvitationRecord => i !== undefined)
    .sort((a, b) => a.invitedAt - b.invitedAt || a.userId.localeCompare(b.userId));
  return {
    conferenceId,
    state: hash.state === 'ended' ? 'ended' : 'active',
    hostId: hash.host ?? '',
    creatorId: hash.creator ?? '',
    createdAt: num(hash.createdAt) ?? 0,
    video: hash.video === '1',
    maxParticipants: num(hash.max) ?? 0,
    fromCallId: str(hash.fromCallId),
    endedAt: num(hash.endedAt),
    endReason: str(hash.endReason) as ConferenceEndReason | undefined,
    relayNode: str(hash.relayNode),
    participants: parts,
    ringing: invites,
  };
}

export function participantOf(conf: ConferenceRecord, userId: string): ParticipantRecord | undefined {
  return conf.participants.find((p) => p.userId === userId);
}

export function invitationOf(conf: ConferenceRecord, userId: string): InvitationRecord | undefined {
  return conf.ringing.find((i) => i.userId === userId);
}

/** A user's place in a conference; `allowed` says whether they were invited (or joined) and not removed. */
export function roleIn(conf: ConferenceRecord, userId: string, allowed: boolean): ConferenceRole {
  if (conf.state === 'ended') return 'none';
  if (participantOf(conf, userId)) return conf.hostId === userId ? 'host' : 'participant';
  return allowed || invitationOf(conf, userId) ? 'invited' : 'none';
}

/**
 * A leg or conference fact as the store scripts write it (all values as
 * strings or numbers from Lua), waiting to be emitted.
 */
export interface PendingFact {
  kind: 'conference-leg' | 'conference';
  /** The leg id, or the conference id. */
  id: string;
  conferenceId: string;
  /** The leg's participant, or the conference's creator. */
  userId: string;
  role: 'host' | 'participant';
  startedAt: number;
  endedAt: number;
  endReason: EndReason;
  hangupBy: CallEndedFact['hangupBy'];
  platform: string | undefined;
  appVersion: string | undefined;
  relayNode: string | undefined;
  participantCount: number;
}

const END_REASONS: readonly EndReason[] = ['completed', 'removed', 'conference_ended', 'party_lost', 'failed'];
const HANGUP_BY: readonly CallEndedFact['hangupBy'][] = ['host', 'participant', 'system'];

export function decodePendingFact(raw: string): PendingFact | undefined {
  const j = parseJson(raw);
  if (!j) return undefined;
  const kind = j.kind === 'conference' || j.kind === 'conference-leg' ? j.kind : undefined;
  const id = str(j.id);
  const conferenceId = str(j.conferenceId);
  const userId = str(j.userId);
  const endReason = END_REASONS.find((r) => r === j.endReason);
  const hangupBy = HANGUP_BY.find((h) => h === j.hangupBy);
  if (!kind || !id || !conferenceId || !userId || !endReason || !hangupBy) return undefined;
  const endedAt = num(j.endedAt) ?? Date.now();
  return {
    kind, id, conferenceId, userId, endReason, hangupBy,
    role: j.role === 'host' ? 'host' : 'participant',
    startedAt: num(j.startedAt) ?? endedAt,
    endedAt,
    platform: str(j.platform),
    appVersion: str(j.appVersion),
    relayNode: str(j.relayNode),
    participantCount: num(j.participantCount) ?? 1,
  };
}

/**
 * The call-ended fact of a leg (one participant's time in the conference,
 * answered at the join) or of the whole conference (its creator as the host
 * party, and how many distinct users took part).
 */
export function toFact(p: PendingFact): CallEndedFact {
  const party: PartyFacts = { userId: p.userId, role: p.role };
  if (p.platform !== undefined) party.platform = p.platform;
  if (p.appVersion !== undefined) party.appVersion = p.appVersion;
  const fact: CallEndedFact = {
    callId: p.id,
    kind: p.kind,
    parties: [party],
    createdAt: p.startedAt,
    answeredAt: p.startedAt,
    endedAt: Math.max(p.endedAt, p.startedAt),
    disposition: 'ANSWERED',
    endReason: p.endReason,
    hangupBy: p.hangupBy,
    mediaPath: 'relay',
    participantCount: p.kind === 'conference' ? p.participantCount : 1,
  };
  if (p.kind === 'conference-leg') fact.parentId = p.conferenceId;
  if (p.relayNode !== undefined) fact.relayNode = p.relayNode;
  return fact;
}
