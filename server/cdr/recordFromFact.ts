import { randomBytes } from 'node:crypto';
import {
  CDR_CODECS, CDR_ICE_TYPES, CDR_PLATFORMS, CDR_SCHEMA_VERSION, cdrRecordSchema, findPersonalData, hangupCauseOf, personalDataIn,
  type CdrRecord, type CdrRole,
} from '../../shared/cdr.js';
import type { CallEndedFact, PartyFacts } from '../calls/CallEndedFact.js';
import type { Pseudonymizer } from './Pseudonymizer.js';

/** A record that would have carried personal data or broken the schema; it is never stored. */
export class CdrRefusedError extends Error {
  constructor(readonly problems: string[]) {
    super(`call record refused: ${problems.join('; ')}`);
    this.name = 'CdrRefusedError';
  }
}

export interface BuiltRecord {
  record: CdrRecord;
  /** Fields whose value was replaced because it did not fit (client text, relay node). */
  sanitized: string[];
}

export function newEventId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Turns a call-ended fact into a record: parties become pseudonyms, times
 * become Asterisk-style durations, client-supplied text is reduced to a safe
 * vocabulary. The finished record is checked field by field for anything
 * that looks like a phone number, an IP address or a raw user id, and
 * against the schema; either failure throws CdrRefusedError.
 */
export function recordFromFact(fact: CallEndedFact, pseudonymizer: Pseudonymizer, eventId = newEventId()): BuiltRecord {
  const sanitized: string[] = [];
  const versions = pseudonymizer.currentVersions;
  const rec: Record<string, string | undefined> = {
    v: String(CDR_SCHEMA_VERSION),
    eventId,
    callId: fact.callId,
    kind: fact.kind,
    parentId: fact.parentId,
    billKeyVersion: versions.billing,
    anonKeyVersion: versions.analytics,
  };

  for (const party of recordedParties(fact)) {
    const p = pseudonymizer.pseudonymize(party.userId);
    const role = party.role;
    rec[`${role}.bill`] = p.bill;
    rec[`${role}.anon`] = p.anon;
    rec[`${role}.platform`] = party.platform === undefined ? undefined : oneOf(CDR_PLATFORMS, party.platform);
    rec[`${role}.appVersion`] = party.appVersion === undefined ? undefined : appVersion(party.appVersion);
    rec[`${role}.ice`] = party.iceType === undefined ? undefined : oneOf(CDR_ICE_TYPES, party.iceType);
    const q = party.quality;
    if (q) {
      rec[`${role}.codec`] = q.codec === undefined ? undefined : codec(q.codec);
      rec[`${role}.rttMs`] = wholeMs(q.rttMs);
      rec[`${role}.jitterMs`] = wholeMs(q.jitterMs);
      rec[`${role}.lossPct`] = q.loss !== undefined && Number.isFinite(q.loss) && q.loss >= 0 && q.loss <= 1
        ? String(Math.round(q.loss * 10000) / 100)
        : undefined;
    }
  }

  const created = fact.createdAt;
  const ended = Math.max(fact.endedAt, created);
  const at = (t: number | undefined) => (t === undefined || !Number.isFinite(t) ? undefined : Math.min(Math.max(Math.round(t), created), ended));
  const ringing = at(fact.ringingAt);
  const answered = at(fact.answeredAt);
  const connected = at(fact.connectedAt);
  rec.createdAt = String(created);
  rec.ringingAt = ringing === undefined ? undefined : String(ringing);
  rec.answeredAt = answered === undefined ? undefined : String(answered);
  rec.connectedAt = connected === undefined ? undefined : String(connected);
  rec.endedAt = String(ended);
  rec.duration = String(Math.floor((ended - created) / 1000));
  rec.billsec = String(answered === undefined ? 0 : Math.floor((ended - answered) / 1000));
  const setupEnd = answered ?? connected;
  rec.setupMs = setupEnd === undefined ? undefined : String(setupEnd - created);
  rec.mediaSetupMs = connected === undefined ? undefined : String(Math.max(0, connected - (answered ?? created)));

  const cause = hangupCauseOf(fact.endReason);
  rec.disposition = fact.disposition;
  rec.endReason = fact.endReason;
  rec.cause = cause.cause;
  rec.causeCode = String(cause.code);
  rec.hangupBy = fact.hangupBy;
  rec.mediaPath = fact.mediaPath;
  if (fact.relayNode !== undefined) {
    // Node names are configuration; one that embeds an address must not leak it into records.
    const ok = /^[A-Za-z0-9_.-]{1,64}$/.test(fact.relayNode) && findPersonalData(fact.relayNode) === null;
    rec.relayNode = ok ? fact.relayNode : 'redacted';
    if (!ok) sanitized.push('relayNode');
  }
  rec.participantCount = String(Math.max(0, Math.floor(fact.participantCount)));

  for (const key of Object.keys(rec)) if (rec[key] === undefined) delete rec[key];
  for (const key of Object.keys(rec)) if (rec[key] === 'other' && key.includes('.')) sanitized.push(key);

  const rawIds = fact.parties.map((p) => p.userId);
  const personal = personalDataIn(rec, rawIds);
  if (personal.length) throw new CdrRefusedError(personal);
  const parsed = cdrRecordSchema.safeParse(rec);
  if (!parsed.success) throw new CdrRefusedError(parsed.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`));
  return { record: parsed.data, sanitized };
}

/**
 * Which parties a record names: both ends of a 1:1 call; the host of a
 * conference summary (participants have their own leg records); the one
 * participant of a leg.
 */
function recordedParties(fact: CallEndedFact): PartyFacts[] {
  const first = (role: CdrRole) => fact.parties.find((p) => p.role === role);
  const pick = (...roles: CdrRole[]) => roles.map(first).filter((p): p is PartyFacts => p !== undefined);
  switch (fact.kind) {
    case 'p2p':
    case 'relayed':
      return pick('caller', 'callee');
    case 'conference':
      return pick('host');
    case 'conference-leg':
      return fact.parties.slice(0, 1);
    default:
      return [];
  }
}

function oneOf<T extends string>(allowed: readonly T[], value: string): T | 'other' {
  return (allowed as readonly string[]).includes(value) ? (value as T) : 'other';
}

/** `1`, `1.2`, `1.2.3.4` (1-4 digits each), optionally a `-beta.1`/`+build`-style suffix. */
const APP_VERSION = /^\d{1,4}(\.\d{1,4}){0,3}([-+][A-Za-z0-9.]{1,16})?$/;
/** More digits than this in one version string could carry a phone number however they are grouped. */
const APP_VERSION_MAX_DIGITS = 6;

function appVersion(value: string): string {
  const digits = value.replace(/\D/g, '').length;
  const ok = APP_VERSION.test(value) && digits <= APP_VERSION_MAX_DIGITS && findPersonalData(value) === null;
  return ok ? value : 'other';
}

const CODECS = new Map(CDR_CODECS.map((c) => [c.toLowerCase(), c]));

/** A known codec name, in its usual spelling; free text (a place to smuggle digits) becomes `other`. */
function codec(value: string): string {
  return CODECS.get(value.replace(/^(audio|video)\//i, '').toLowerCase()) ?? 'other';
}

function wholeMs(value: number | undefined): string | undefined {
  if (value === undefined || !Number.isFinite(value) || value < 0) return undefined;
  return String(Math.round(Math.min(value, 600_000)));
}
