import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CallEndedFact, Disposition, EndReason } from '../../server/calls/CallEndedFact.js';
import { keys } from '../../server/keys.js';

/**
 * Helpers for call-record tests: call-ended facts as the calls and conference
 * subsystems produce them, reading every record back, and an independent
 * personal-data scan (it does not reuse the writer's own detector).
 */

export const callId = () => `c${randomBytes(9).toString('base64url')}`;

/** What ends a 1:1 call with each disposition: end reason, who hung up, whether it was answered. */
export const DISPOSITION_CASES: { disposition: Disposition; endReason: EndReason; hangupBy: CallEndedFact['hangupBy']; answered: boolean }[] = [
  { disposition: 'ANSWERED', endReason: 'completed', hangupBy: 'callee', answered: true },
  { disposition: 'NO_ANSWER', endReason: 'no_answer', hangupBy: 'system', answered: false },
  { disposition: 'BUSY', endReason: 'busy', hangupBy: 'system', answered: false },
  { disposition: 'FAILED', endReason: 'failed', hangupBy: 'system', answered: false },
  { disposition: 'CANCELLED', endReason: 'cancelled', hangupBy: 'caller', answered: false },
  { disposition: 'DECLINED', endReason: 'declined', hangupBy: 'callee', answered: false },
];

/** A 1:1 call fact between two user ids, ended with `disposition`, ending before `end` (default now). */
export function oneToOneFact(callerId: string, calleeId: string, c: (typeof DISPOSITION_CASES)[number], over: Partial<CallEndedFact> = {}, end = Date.now()): CallEndedFact {
  const created = end - 95_000;
  const answeredAt = c.answered ? created + 4_200 : undefined;
  return {
    callId: callId(),
    kind: 'p2p',
    parties: [
      { userId: callerId, role: 'caller', platform: 'ios', appVersion: '2.4.1', iceType: 'srflx', quality: c.answered ? { codec: 'opus', rttMs: 48.6, jitterMs: 3.2, loss: 0.012 } : undefined },
      { userId: calleeId, role: 'callee', platform: 'android', appVersion: '2.3.0-beta.1', iceType: 'host', quality: c.answered ? { codec: 'opus', rttMs: 51, jitterMs: 4, loss: 0 } : undefined },
    ],
    createdAt: created,
    ringingAt: created + 300,
    answeredAt,
    connectedAt: c.answered ? created + 4_650 : undefined,
    endedAt: c.answered ? created + 65_900 : created + (c.disposition === 'NO_ANSWER' ? 60_000 : 2_000),
    disposition: c.disposition,
    endReason: c.endReason,
    hangupBy: c.hangupBy,
    mediaPath: c.answered ? 'direct' : 'none',
    participantCount: 2,
    ...over,
  };
}

/** A conference summary and one leg per participant (host first), ending before `end` (default now). */
export function conferenceFacts(hostId: string, participantIds: string[], relayNode = 'relay-a', end = Date.now()): CallEndedFact[] {
  const confId = callId();
  const created = end - 600_000;
  const ended = created + 300_000;
  const summary: CallEndedFact = {
    callId: confId, kind: 'conference', parties: [{ userId: hostId, role: 'host', platform: 'web' }],
    createdAt: created, connectedAt: created + 800, endedAt: ended, disposition: 'ANSWERED', endReason: 'conference_ended',
    hangupBy: 'host', mediaPath: 'relay', relayNode, participantCount: participantIds.length + 1,
  };
  const legs = [hostId, ...participantIds].map((uid, i): CallEndedFact => ({
    callId: callId(), parentId: confId, kind: 'conference-leg',
    parties: [{ userId: uid, role: i === 0 ? 'host' : 'participant', platform: 'desktop', appVersion: '1.0.0', quality: { codec: 'opus', rttMs: 30 + i, jitterMs: 2, loss: 0.001 } }],
    createdAt: created + i * 1000, answeredAt: created + i * 1000 + 500, connectedAt: created + i * 1000 + 900,
    endedAt: ended - i * 1000, disposition: 'ANSWERED', endReason: i === 0 ? 'conference_ended' : 'completed',
    hangupBy: i === 0 ? 'host' : 'participant', mediaPath: 'relay', relayNode, participantCount: participantIds.length + 1,
  }));
  return [summary, ...legs];
}

export interface StoredRecord {
  stream: string;
  id: string;
  fields: Record<string, string>;
}

/** Every entry of every shard stream. */
export async function readAllRecords(redis: Redis, shards: number): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (let n = 0; n < shards; n++) {
    const stream = keys.cdrShard(n);
    const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    for (const [id, flat] of entries) {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      out.push({ stream, id, fields });
    }
  }
  return out;
}

/** Polls until `count` records are stored (or `timeoutMs`), then returns them all. */
export async function waitForRecords(redis: Redis, shards: number, count: number, timeoutMs = 8000): Promise<StoredRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await readAllRecords(redis, shards);
    if (all.length >= count || Date.now() > deadline) return all;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Findings of personal data in stored records: any field name or value
 * containing one of the known phone numbers (also without '+' or with the
 * national 0), display names, raw user ids, or anything shaped like an
 * E.164 number or an IPv4/IPv6 address.
 */
export function personalDataFindings(records: StoredRecord[], known: { phones: string[]; names: string[]; userIds: string[] }): string[] {
  const findings: string[] = [];
  const needles: [string, string][] = [];
  for (const p of known.phones) {
    needles.push([p, 'phone'], [p.slice(1), 'phone digits'], [`0${p.slice(3)}`, 'national number']);
  }
  for (const n of known.names) if (n.length >= 3) needles.push([n.toLowerCase(), 'name']);
  for (const u of known.userIds) needles.push([u.toLowerCase(), 'user id']);
  for (const r of records) {
    for (const [field, value] of Object.entries(r.fields)) {
      for (const text of [field, value]) {
        const lower = text.toLowerCase();
        for (const [needle, what] of needles) if (lower.includes(needle.toLowerCase())) findings.push(`${r.id} ${field}: ${what}`);
        if (/\+\d{7,15}/.test(text.replace(/[\s().-]/g, ''))) findings.push(`${r.id} ${field}: E.164-like`);
        if (/\b\d{1,3}(\.\d{1,3}){3}\b/.test(text)) findings.push(`${r.id} ${field}: IPv4-like`);
        if (/[0-9a-f]*:[0-9a-f]*:[0-9a-f]*/i.test(text)) findings.push(`${r.id} ${field}: IPv6-like`);
      }
    }
  }
  return findings;
}
