import type { Redis } from 'ioredis';
import { cdrParties, type CdrRecord } from '../../shared/cdr.js';
import { keys } from '../keys.js';
import type { CdrEffect, CdrIncrement, CdrPeriod } from './CdrConsumer.js';
import { monthEnd } from './periods.js';

export const BILLING_GROUP = 'billing';

export interface BillingAccountUsage {
  /** `<billKeyVersion>:<billing pseudonym>`. */
  account: string;
  /** Billable seconds of 1:1 calls the account placed. */
  out: number;
  /** Billable seconds of 1:1 calls the account received. */
  in: number;
  /** Billable seconds in conferences (the account's legs). */
  conf: number;
  /** Answered calls and legs. */
  calls: number;
  total: number;
}

export interface BillingSummary {
  period: string;
  totalBillsec: number;
  calls: number;
  legs: number;
  accounts: BillingAccountUsage[];
}

/**
 * Billable seconds (Asterisk billsec: answer to end) per pseudonymous billing
 * account and period, in Redis hashes per UTC day and month of the call's
 * start:
 *   cdr:{billing:<YYYY-MM>}:day:<YYYY-MM-DD> and cdr:{billing:<YYYY-MM>}:month
 * with fields `acct:<keyVersion>:<pseudonym>:{out,in,conf,calls}` and totals
 * `total:{billsec,calls,legs}`. A 1:1 call bills both ends (out / in); a
 * conference bills each participant's leg; conference summaries and
 * unanswered calls bill nothing. Aggregates expire `retentionMs` after their
 * month ends.
 */
export class BillingAggregator {
  constructor(private readonly retentionMs: number) {}

  readonly handle = (record: CdrRecord, period: CdrPeriod): CdrEffect | null => {
    const billsec = Number(record.billsec);
    if (!(billsec > 0)) return null;
    if (record.kind === 'conference') return null;
    const day = period.key(`day:${period.day}`);
    const month = period.key('month');
    const increments: CdrIncrement[] = [];
    const add = (field: string, by: number) => {
      increments.push({ key: day, field, by }, { key: month, field, by });
    };
    const kv = record.billKeyVersion;
    for (const party of cdrParties(record)) {
      const column = party.role === 'caller' ? 'out' : party.role === 'callee' ? 'in' : 'conf';
      add(`acct:${kv}:${party.bill}:${column}`, billsec);
      add(`acct:${kv}:${party.bill}:calls`, 1);
    }
    add('total:billsec', billsec);
    add(record.kind === 'conference-leg' ? 'total:legs' : 'total:calls', 1);
    const expiry = monthEnd(Number(record.createdAt)) + this.retentionMs;
    return { increments, expireAt: { [day]: expiry, [month]: expiry } };
  };

  /** Usage of a day (YYYY-MM-DD) or month (YYYY-MM), accounts by billable seconds, most first. */
  static async summary(redis: Redis, period: { kind: 'day' | 'month'; name: string; month: string }): Promise<BillingSummary> {
    const key = keys.cdrGroupMonth(BILLING_GROUP, period.month, period.kind === 'day' ? `day:${period.name}` : 'month');
    const h = await redis.hgetall(key);
    const accounts = new Map<string, BillingAccountUsage>();
    for (const [field, value] of Object.entries(h)) {
      const m = /^acct:([^:]+):([^:]+):(out|in|conf|calls)$/.exec(field);
      if (!m) continue;
      const account = `${m[1]}:${m[2]}`;
      const usage = accounts.get(account) ?? { account, out: 0, in: 0, conf: 0, calls: 0, total: 0 };
      usage[m[3] as 'out' | 'in' | 'conf' | 'calls'] = Number(value);
      accounts.set(account, usage);
    }
    for (const u of accounts.values()) u.total = u.out + u.in + u.conf;
    return {
      period: period.name,
      totalBillsec: Number(h['total:billsec'] ?? 0),
      calls: Number(h['total:calls'] ?? 0),
      legs: Number(h['total:legs'] ?? 0),
      accounts: [...accounts.values()].sort((a, b) => b.total - a.total || a.account.localeCompare(b.account)),
    };
  }
}
