/**
 * Call detail records: the schema of one entry of the `cdr:{n}` streams, as
 * stored (flat string fields), shared by the writer (hub), the consumers
 * (billing, analytics), the support lookup and tests. docs/cdr.md describes
 * every field.
 *
 * A record never holds personal data in the clear: parties appear only as
 * keyed pseudonyms (`<role>.bill`, `<role>.anon`) with the key versions used.
 * `findPersonalData` is the last line of defence the writer runs on every
 * field before anything is stored.
 */
import { z } from 'zod';

/** Bumped when a field changes meaning or a required field is added. */
export const CDR_SCHEMA_VERSION = 1;

export const CDR_KINDS = ['p2p', 'relayed', 'conference', 'conference-leg'] as const;
export type CdrKind = (typeof CDR_KINDS)[number];

export const CDR_DISPOSITIONS = ['ANSWERED', 'NO_ANSWER', 'BUSY', 'FAILED', 'CANCELLED', 'DECLINED'] as const;
export type CdrDisposition = (typeof CDR_DISPOSITIONS)[number];

export const CDR_ROLES = ['caller', 'callee', 'host', 'participant'] as const;
export type CdrRole = (typeof CDR_ROLES)[number];

export const CDR_MEDIA_PATHS = ['direct', 'relay', 'none'] as const;
export const CDR_PLATFORMS = ['ios', 'android', 'web', 'desktop', 'other'] as const;
export const CDR_ICE_TYPES = ['host', 'srflx', 'prflx', 'relay', 'other'] as const;
/**
 * Codec names a record may hold (RTP encoding names as WebRTC reports them,
 * spelled as here); a client's report is matched case-insensitively, without
 * an `audio/` or `video/` prefix, and anything else is stored as `other`.
 */
export const CDR_CODECS = [
  'opus', 'PCMU', 'PCMA', 'G722', 'G729', 'iLBC', 'ISAC', 'CN', 'telephone-event', 'red', 'ulpfec', 'flexfec-03',
  'VP8', 'VP9', 'H264', 'H265', 'AV1', 'other',
] as const;

/**
 * End reasons with their hangup cause, FreeSWITCH-style: the cause name and
 * its number (Q.850 values; ORIGINATOR_CANCEL is FreeSWITCH's 487, which has
 * no Q.850 equivalent). Unknown reasons map to NORMAL_UNSPECIFIED (31).
 */
export const CDR_HANGUP_CAUSES = {
  completed: { cause: 'NORMAL_CLEARING', code: 16 },
  busy: { cause: 'USER_BUSY', code: 17 },
  no_answer: { cause: 'NO_ANSWER', code: 19 },
  declined: { cause: 'CALL_REJECTED', code: 21 },
  declined_elsewhere: { cause: 'CALL_REJECTED', code: 21 },
  answered_elsewhere: { cause: 'NON_SELECTED_USER_CLEARING', code: 26 },
  party_lost: { cause: 'NETWORK_OUT_OF_ORDER', code: 38 },
  failed: { cause: 'TEMPORARY_FAILURE', code: 41 },
  cancelled: { cause: 'ORIGINATOR_CANCEL', code: 487 },
  removed: { cause: 'NORMAL_CLEARING', code: 16 },
  conference_ended: { cause: 'NORMAL_CLEARING', code: 16 },
} as const satisfies Record<string, { cause: string; code: number }>;
export const CDR_UNKNOWN_CAUSE = { cause: 'NORMAL_UNSPECIFIED', code: 31 } as const;

export function hangupCauseOf(endReason: string): { cause: string; code: number } {
  return (CDR_HANGUP_CAUSES as Record<string, { cause: string; code: number }>)[endReason] ?? CDR_UNKNOWN_CAUSE;
}

/** Ids the server mints (call, conference, event, relay node): URL-safe and bounded. */
const CdrId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be an id');
/** Keyed pseudonym: 22 base64url characters (132 bits of HMAC-SHA256). */
export const Pseudonym = z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be a pseudonym');
const KeyVersion = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be a key version');
/** Non-negative integer as a decimal string (epoch ms, seconds, counts). */
const UInt = z.string().regex(/^(0|[1-9]\d{0,15})$/, 'must be a non-negative integer');
/** Non-negative decimal with at most 2 decimals (loss percentages). */
const UDec = z.string().regex(/^(0|[1-9]\d{0,5})(\.\d{1,2})?$/, 'must be a non-negative decimal');
const ClientText = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9/._+-]{0,31}$/, 'must be a short token');

/** Per-party fields, stored as `<role>.<field>`. */
export const CDR_PARTY_FIELDS = {
  /** Billing pseudonym (CDR_PSEUDONYM_KEYS_BILLING, version in billKeyVersion). */
  bill: Pseudonym,
  /** Analytics pseudonym (CDR_PSEUDONYM_KEYS_ANALYTICS, version in anonKeyVersion). */
  anon: Pseudonym,
  platform: z.enum(CDR_PLATFORMS),
  appVersion: ClientText,
  codec: ClientText,
  rttMs: UInt,
  jitterMs: UInt,
  lossPct: UDec,
  /** ICE candidate type the party's media used. */
  ice: z.enum(CDR_ICE_TYPES),
} as const;
export type CdrPartyField = keyof typeof CDR_PARTY_FIELDS;

const partyShape: Record<string, z.ZodOptional<z.ZodTypeAny>> = {};
for (const role of CDR_ROLES) {
  for (const [field, schema] of Object.entries(CDR_PARTY_FIELDS)) partyShape[`${role}.${field}`] = schema.optional();
}

const baseShape = {
  /** Schema version. */
  v: z.literal(String(CDR_SCHEMA_VERSION)),
  /** Unique per record; consumers and the writer deduplicate on it. */
  eventId: CdrId,
  callId: CdrId,
  kind: z.enum(CDR_KINDS),
  /** For conference-leg: the conference's call id. */
  parentId: CdrId.optional(),
  billKeyVersion: KeyVersion,
  anonKeyVersion: KeyVersion,
  createdAt: UInt,
  ringingAt: UInt.optional(),
  answeredAt: UInt.optional(),
  connectedAt: UInt.optional(),
  endedAt: UInt,
  /** Whole seconds from created to ended (rounded down, as Asterisk). */
  duration: UInt,
  /** Whole seconds from answered to ended; 0 when never answered. */
  billsec: UInt,
  /** ms from created to answered (or to media connected when there is no answer step). */
  setupMs: UInt.optional(),
  /** ms from answered (or created) to media connected. */
  mediaSetupMs: UInt.optional(),
  disposition: z.enum(CDR_DISPOSITIONS),
  endReason: z.string().regex(/^[a-z_]{1,32}$/),
  cause: z.string().regex(/^[A-Z_]{1,40}$/),
  causeCode: UInt,
  hangupBy: z.enum([...CDR_ROLES, 'system']),
  mediaPath: z.enum(CDR_MEDIA_PATHS),
  relayNode: CdrId.optional(),
  participantCount: UInt,
};

/** The fields every record has (or may have), without the per-party ones. */
export type CdrBaseFields = z.output<z.ZodObject<typeof baseShape>>;
/** A record as stored: base fields plus `<role>.<field>` party fields. */
export type CdrRecord = CdrBaseFields & Partial<Record<`${CdrRole}.${CdrPartyField}`, string>>;

/** The record as stored: every field a string, unknown fields refused. */
export const cdrRecordSchema = z
  .object({ ...baseShape, ...partyShape })
  .strict()
  .superRefine((r, ctx) => {
    const rec = r as Record<string, string | undefined>;
    const kind = rec.kind as CdrKind;
    const roles = CDR_ROLES.filter((role) => Object.keys(rec).some((k) => k.startsWith(`${role}.`)));
    for (const role of roles) {
      if (!rec[`${role}.bill`] || !rec[`${role}.anon`]) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `party ${role} lacks its pseudonyms` });
      }
    }
    const need: Record<CdrKind, CdrRole[]> = { p2p: ['caller', 'callee'], relayed: ['caller', 'callee'], conference: [], 'conference-leg': [] };
    for (const role of need[kind] ?? []) {
      if (!roles.includes(role)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${kind} record lacks ${role}` });
    }
    if (kind === 'conference-leg' && (roles.length !== 1 || !rec.parentId)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a conference-leg record has exactly one party and a parentId' });
    }
  }) as unknown as z.ZodType<CdrRecord>;

export class CdrDecodeError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid call record: ${problems.join('; ')}`);
    this.name = 'CdrDecodeError';
  }
}

/** A record as stream field/value pairs, in a stable order. */
export function encodeCdr(record: CdrRecord): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out.push(k, v);
  return out;
}

/** Parses stream field/value pairs (or an object) into a record; throws CdrDecodeError. */
export function decodeCdr(fields: string[] | Record<string, string>): CdrRecord {
  const obj: Record<string, string> = {};
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) obj[fields[i]!] = fields[i + 1]!;
  } else {
    Object.assign(obj, fields);
  }
  const parsed = cdrRecordSchema.safeParse(obj);
  if (!parsed.success) throw new CdrDecodeError(parsed.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`));
  return parsed.data as CdrRecord;
}

export interface CdrParty {
  role: CdrRole;
  bill: string;
  anon: string;
  platform?: string;
  appVersion?: string;
  codec?: string;
  rttMs?: number;
  jitterMs?: number;
  lossPct?: number;
  ice?: string;
}

/** The parties of a record, typed. */
export function cdrParties(record: CdrRecord): CdrParty[] {
  const rec = record as Record<string, string | undefined>;
  const out: CdrParty[] = [];
  for (const role of CDR_ROLES) {
    const bill = rec[`${role}.bill`];
    const anon = rec[`${role}.anon`];
    if (!bill || !anon) continue;
    const num = (f: string) => (rec[`${role}.${f}`] === undefined ? undefined : Number(rec[`${role}.${f}`]));
    const party: CdrParty = { role, bill, anon };
    for (const f of ['platform', 'appVersion', 'codec', 'ice'] as const) {
      const value = rec[`${role}.${f}`];
      if (value !== undefined) party[f] = value;
    }
    for (const f of ['rttMs', 'jitterMs', 'lossPct'] as const) {
      const value = num(f);
      if (value !== undefined) party[f] = value;
    }
    out.push(party);
  }
  return out;
}

// --- Personal data detection ---------------------------------------------

/** `+` and 7-15 digits, optionally grouped by spaces, dots, dashes or brackets. */
const E164_LIKE = /\+\s*\(?[1-9](?:[\s().-]*\d){6,14}/;
const IPV4_LIKE = /(?:^|[^\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?:$|[^\d.])/;
/** Two or more colons with only hex digits between them (covers ::1, fe80::1, full and mapped forms). */
const IPV6_LIKE = /[0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f:.]*/i;

/**
 * Why a value looks like personal data (a phone number, an IP address, or one
 * of the given raw user ids), or null. Used on every field before a record is
 * stored; record fields never contain '+' or ':' legitimately.
 */
export function findPersonalData(value: string, rawUserIds: readonly string[] = []): string | null {
  if (E164_LIKE.test(value)) return 'phone number';
  if (IPV4_LIKE.test(value)) return 'IPv4 address';
  if (IPV6_LIKE.test(value)) return 'IPv6 address';
  for (const uid of rawUserIds) {
    if (uid && (value === uid || (uid.length >= 6 && value.includes(uid)))) return 'raw user id';
  }
  return null;
}

/** Every field of a record that looks like personal data, as `field: reason`. */
export function personalDataIn(record: Record<string, string | undefined>, rawUserIds: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined) continue;
    const why = findPersonalData(value, rawUserIds);
    if (why) problems.push(`${field}: ${why}`);
  }
  return problems;
}
