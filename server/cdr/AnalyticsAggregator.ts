import type { Redis } from 'ioredis';
import { CDR_DISPOSITIONS, CDR_KINDS, cdrParties, type CdrRecord } from '../../shared/cdr.js';
import { keys } from '../keys.js';
import type { CdrEffect, CdrIncrement, CdrPeriod } from './CdrConsumer.js';
import { monthEnd } from './periods.js';

export const ANALYTICS_GROUP = 'analytics';

/** Upper bounds (ms) of the setup-time histogram buckets; percentiles are read at this resolution. */
export const SETUP_BUCKETS_MS = [100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 45000, 60000, 90000, 120000] as const;

export interface TimeStats {
  count: number;
  avgMs: number | null;
  /** Upper bound of the bucket holding the percentile (null when no data; Infinity above the last bucket). */
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
}

export interface AnalyticsSummary {
  period: string;
  records: number;
  kinds: Record<string, number>;
  /** Dispositions of 1:1 calls (p2p and relayed). */
  dispositions: Record<string, number>;
  causes: Record<string, number>;
  /** Created to answered, answered 1:1 calls. */
  setup: TimeStats;
  /** Answered (or joined) to media connected. */
  mediaSetup: TimeStats;
  /** Media path of answered 1:1 calls: count and share. */
  mediaPath: Record<string, { count: number; share: number }>;
  /** Average talk time (billsec) of answered 1:1 calls. */
  avgTalkSec: number | null;
  quality: { reports: number; avgRttMs: number | null; avgJitterMs: number | null; avgLossPct: number | null };
  codecs: Record<string, number>;
  platforms: Record<string, number>;
  /** Distinct parties (analytics pseudonyms, HyperLogLog estimate). */
  distinctParties: number;
}

/**
 * Usage and quality per UTC day and month of the call's start, in hashes
 * `cdr:{analytics:<YYYY-MM>}:day:<YYYY-MM-DD>` and `...:month`, plus a
 * HyperLogLog of analytics pseudonyms per period for distinct parties:
 * counts per kind, dispositions, hangup causes, setup-time sums and
 * histograms (percentiles), media path share, client-reported quality sums,
 * codecs and platforms. Aggregates expire `retentionMs` after their month.
 */
export class AnalyticsAggregator {
  constructor(private readonly retentionMs: number) {}

  readonly handle = (record: CdrRecord, period: CdrPeriod): CdrEffect => {
    const day = period.key(`day:${period.day}`);
    const month = period.key('month');
    const increments: CdrIncrement[] = [];
    const add = (field: string, by = 1, float = false) => {
      increments.push({ key: day, field, by, float }, { key: month, field, by, float });
    };
    const oneToOne = record.kind === 'p2p' || record.kind === 'relayed';
    add('records');
    add(`kind:${record.kind}`);
    add(`cause:${record.cause}`);
    if (oneToOne) {
      add(`disp:${record.disposition}`);
      if (record.answeredAt !== undefined) {
        add(`path:${record.mediaPath}`);
        add('talk:n');
        add('talk:sum', Number(record.billsec));
      }
    }
    if (oneToOne && record.setupMs !== undefined) addTime(add, 'setup', Number(record.setupMs));
    if (record.mediaSetupMs !== undefined) addTime(add, 'media', Number(record.mediaSetupMs));

    const uniques = [];
    for (const party of cdrParties(record)) {
      uniques.push({ key: period.key(`parties:${period.day}`), member: `${record.anonKeyVersion}:${party.anon}` });
      uniques.push({ key: period.key('parties:month'), member: `${record.anonKeyVersion}:${party.anon}` });
      if (party.platform) add(`platform:${party.platform}`);
      if (party.codec) add(`codec:${party.codec}`);
      if (party.rttMs !== undefined || party.jitterMs !== undefined || party.lossPct !== undefined) add('q:reports');
      if (party.rttMs !== undefined) { add('q:rtt:n'); add('q:rtt:sum', party.rttMs); }
      if (party.jitterMs !== undefined) { add('q:jitter:n'); add('q:jitter:sum', party.jitterMs); }
      if (party.lossPct !== undefined) { add('q:loss:n'); add('q:loss:sum', party.lossPct, true); }
    }
    const expiry = monthEnd(Number(record.createdAt)) + this.retentionMs;
    const expireAt: Record<string, number> = {};
    for (const k of new Set([day, month, ...uniques.map((u) => u.key)])) expireAt[k] = expiry;
    return { increments, uniques, expireAt };
  };

  static async summary(redis: Redis, period: { kind: 'day' | 'month'; name: string; month: string }): Promise<AnalyticsSummary> {
    const suffix = period.kind === 'day' ? `day:${period.name}` : 'month';
    const h = await redis.hgetall(keys.cdrGroupMonth(ANALYTICS_GROUP, period.month, suffix));
    const distinct = await redis.pfcount(keys.cdrGroupMonth(ANALYTICS_GROUP, period.month, period.kind === 'day' ? `parties:${period.name}` : 'parties:month'));
    const n = (field: string) => Number(h[field] ?? 0);
    const avg = (sum: string, count: string) => (n(count) ? n(sum) / n(count) : null);
    const prefixed = (prefix: string) => {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(h)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = Number(v);
      return out;
    };
    const kinds: Record<string, number> = {};
    for (const kind of CDR_KINDS) kinds[kind] = n(`kind:${kind}`);
    const dispositions: Record<string, number> = {};
    for (const d of CDR_DISPOSITIONS) dispositions[d] = n(`disp:${d}`);
    const paths = prefixed('path:');
    const answered = Object.values(paths).reduce((a, b) => a + b, 0);
    const mediaPath: Record<string, { count: number; share: number }> = {};
    for (const [path, count] of Object.entries(paths)) mediaPath[path] = { count, share: answered ? count / answered : 0 };
    return {
      period: period.name,
      records: n('records'),
      kinds,
      dispositions,
      causes: prefixed('cause:'),
      setup: timeStats(h, 'setup'),
      mediaSetup: timeStats(h, 'media'),
      mediaPath,
      avgTalkSec: avg('talk:sum', 'talk:n'),
      quality: { reports: n('q:reports'), avgRttMs: avg('q:rtt:sum', 'q:rtt:n'), avgJitterMs: avg('q:jitter:sum', 'q:jitter:n'), avgLossPct: avg('q:loss:sum', 'q:loss:n') },
      codecs: prefixed('codec:'),
      platforms: prefixed('platform:'),
      distinctParties: distinct,
    };
  }
}

function bucketOf(ms: number): string {
  const bound = SETUP_BUCKETS_MS.find((b) => ms <= b);
  return bound === undefined ? 'inf' : String(bound);
}

function addTime(add: (field: string, by?: number) => void, name: string, ms: number): void {
  add(`${name}:n`);
  add(`${name}:sum`, ms);
  add(`${name}:le:${bucketOf(ms)}`);
}

function timeStats(h: Record<string, string>, name: string): TimeStats {
  const count = Number(h[`${name}:n`] ?? 0);
  if (!count) return { count, avgMs: null, p50Ms: null, p90Ms: null, p99Ms: null };
  const bounds = [...SETUP_BUCKETS_MS.map(String), 'inf'];
  const percentile = (p: number) => {
    const rank = Math.ceil(p * count);
    let seen = 0;
    for (const b of bounds) {
      seen += Number(h[`${name}:le:${b}`] ?? 0);
      if (seen >= rank) return b === 'inf' ? Infinity : Number(b);
    }
    return Infinity;
  };
  return { count, avgMs: Number(h[`${name}:sum`]) / count, p50Ms: percentile(0.5), p90Ms: percentile(0.9), p99Ms: percentile(0.99) };
}
