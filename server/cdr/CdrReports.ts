import type { AnalyticsSummary, TimeStats } from './AnalyticsAggregator.js';
import type { BillingSummary } from './BillingAggregator.js';
import type { CdrConsumerStats } from './CdrConsumer.js';
import type { LookupResult } from './SupportLookup.js';

/** Plain-text renderings of CDR summaries for the operator commands in scripts/. */

/** Seconds as h:mm:ss. */
export function hms(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

const pct = (part: number, whole: number) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : '-');
const num = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));
const counts = (rec: Record<string, number>) => {
  const entries = Object.entries(rec).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, n]) => `${k} ${n}`).join(', ') : '-';
};

export function formatConsumerStats(group: string, consumer: string, s: CdrConsumerStats): string {
  return `${group} consumer ${consumer}: applied ${s.applied}, duplicates ${s.duplicates}, skipped ${s.skipped}, `
    + `failed ${s.failed}, claimed ${s.claimed}, dead-lettered ${s.deadLettered}`;
}

export function formatBillingSummary(s: BillingSummary, top = 20): string {
  const lines = [`Billing ${s.period} (UTC): ${s.calls} answered calls, ${s.legs} conference legs, ${hms(s.totalBillsec)} billable (${s.totalBillsec} s), ${s.accounts.length} accounts`];
  if (s.accounts.length) {
    lines.push(`  ${'account (key version:pseudonym)'.padEnd(34)} ${'out'.padStart(9)} ${'in'.padStart(9)} ${'conf'.padStart(9)} ${'total'.padStart(9)} ${'calls'.padStart(6)}`);
    for (const a of s.accounts.slice(0, top)) {
      lines.push(`  ${a.account.padEnd(34)} ${hms(a.out).padStart(9)} ${hms(a.in).padStart(9)} ${hms(a.conf).padStart(9)} ${hms(a.total).padStart(9)} ${String(a.calls).padStart(6)}`);
    }
    if (s.accounts.length > top) lines.push(`  ... and ${s.accounts.length - top} more`);
  }
  return lines.join('\n');
}

function time(label: string, t: TimeStats): string {
  if (!t.count) return `  ${label}: no data`;
  const p = (v: number | null) => (v === null ? '-' : v === Infinity ? '>120000' : `<=${v}`);
  return `  ${label}: n=${t.count}, avg ${num(t.avgMs, 0)} ms, p50 ${p(t.p50Ms)} ms, p90 ${p(t.p90Ms)} ms, p99 ${p(t.p99Ms)} ms`;
}

export function formatAnalyticsSummary(s: AnalyticsSummary): string {
  const oneToOne = Object.values(s.dispositions).reduce((a, b) => a + b, 0);
  const paths = Object.entries(s.mediaPath).sort((a, b) => b[1].count - a[1].count).map(([p, v]) => `${p} ${(v.share * 100).toFixed(1)}% (${v.count})`).join(', ') || '-';
  return [
    `Analytics ${s.period} (UTC): ${s.records} records, about ${s.distinctParties} distinct parties`,
    `  kinds: ${counts(s.kinds)}`,
    `  1:1 dispositions: ${Object.entries(s.dispositions).filter(([, n]) => n).map(([d, n]) => `${d} ${n} (${pct(n, oneToOne)})`).join(', ') || '-'}`,
    `  hangup causes: ${counts(s.causes)}`,
    time('setup, created to answered (1:1)', s.setup),
    time('media setup, answered to connected', s.mediaSetup),
    `  media path of answered 1:1 calls: ${paths}`,
    `  average talk time: ${s.avgTalkSec === null ? '-' : hms(s.avgTalkSec)}`,
    `  quality (${s.quality.reports} reports): rtt ${num(s.quality.avgRttMs)} ms, jitter ${num(s.quality.avgJitterMs)} ms, loss ${num(s.quality.avgLossPct, 2)} %`,
    `  codecs: ${counts(s.codecs)}`,
    `  platforms: ${counts(s.platforms)}`,
  ].join('\n');
}

export function formatLookup(operator: string, r: LookupResult): string {
  const lines = [
    `lookup ${r.lookupId} by ${operator}, audited as ${r.auditEntryId} in cdr:audit`,
    r.accountFound ? `${r.matches.length} record(s) for this account` : 'no account has this number: no records can name it',
  ];
  if (r.matches.length) {
    lines.push(`  ${'started (UTC)'.padEnd(24)} ${'kind'.padEnd(14)} ${'role'.padEnd(11)} ${'disposition'.padEnd(11)} ${'duration'.padStart(9)} ${'billsec'.padStart(9)}  ${'cause'.padEnd(26)} ${'media'.padEnd(6)} call`);
    for (const m of r.matches) {
      const rec = m.record;
      lines.push(`  ${new Date(Number(rec.createdAt)).toISOString().padEnd(24)} ${String(rec.kind).padEnd(14)} ${m.role.padEnd(11)} ${String(rec.disposition).padEnd(11)} `
        + `${hms(Number(rec.duration)).padStart(9)} ${hms(Number(rec.billsec)).padStart(9)}  ${String(rec.cause).padEnd(26)} ${String(rec.mediaPath).padEnd(6)} ${rec.callId}`);
    }
  }
  return lines.join('\n');
}
