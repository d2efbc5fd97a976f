import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CDR_ROLES, decodeCdr, findPersonalData, type CdrRecord, type CdrRole } from '../../shared/cdr.js';
import { E164 } from '../../shared/protocol/common.js';
import { keys } from '../keys.js';
import type { Pseudonymizer } from './Pseudonymizer.js';

export interface LookupRequest {
  /** The user's number, E.164. Used to find the account; never stored. */
  phone: string;
  /** Who looks (operator login). */
  operator: string;
  /** Why (ticket, dispute reference). */
  reason: string;
}

export interface LookupMatch {
  stream: string;
  id: string;
  /** The user's role in the record. */
  role: CdrRole;
  record: CdrRecord;
}

export interface LookupResult {
  /** Id of the audit entry written for this lookup. */
  lookupId: string;
  auditEntryId: string;
  /** Whether the number belongs to an account (if not, nothing can match). */
  accountFound: boolean;
  matches: LookupMatch[];
}

export interface SupportLookupOptions {
  redis: Redis;
  /** The hub's account directory (phone -> user id through the keyed phone index). */
  accounts: { findByPhone(e164: string): Promise<string | null> };
  pseudonymizer: Pseudonymizer;
  shards: number;
}

const OPERATOR = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * The one way from a person to their call records, for support and billing
 * disputes: the number gives the account (through the hub's keyed phone
 * index), the account id gives the user's pseudonyms under every key version
 * still configured, and every shard is scanned for records naming them.
 * Each lookup, whatever it finds, leaves an audit entry in `cdr:audit`
 * (operator, reason, time, subject as its current billing pseudonym, how
 * many records) before any result is returned. The number itself is never
 * stored or logged.
 */
export class SupportLookup {
  readonly #opts: SupportLookupOptions;

  constructor(opts: SupportLookupOptions) {
    this.#opts = opts;
  }

  async lookup(req: LookupRequest): Promise<LookupResult> {
    if (!E164.safeParse(req.phone).success) throw new TypeError('phone must be an E.164 number (+ and digits)');
    if (!OPERATOR.test(req.operator)) throw new TypeError('operator must be a login name ([A-Za-z0-9._@-], at most 64)');
    const reason = req.reason.trim();
    if (reason.length < 3 || reason.length > 200) throw new TypeError('reason must be 3 to 200 characters');
    if (findPersonalData(reason) || /\d{7,}/.test(reason.replace(/[\s().-]/g, ''))) {
      throw new TypeError('reason must not contain a phone number or an address; cite a ticket instead');
    }

    const { redis, pseudonymizer, shards } = this.#opts;
    const userId = await this.#opts.accounts.findByPhone(req.phone);
    const matches: LookupMatch[] = [];
    if (userId) {
      const bill = pseudonymizer.allVersions('billing', userId);
      const anon = pseudonymizer.allVersions('analytics', userId);
      for (let n = 0; n < shards; n++) {
        const stream = keys.cdrShard(n);
        for await (const [id, fields] of scan(redis, stream)) {
          const rec: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) rec[fields[i]!] = fields[i + 1]!;
          const myBill = bill.get(rec.billKeyVersion ?? '');
          const myAnon = anon.get(rec.anonKeyVersion ?? '');
          const role = CDR_ROLES.find((r) => (myBill && rec[`${r}.bill`] === myBill) || (myAnon && rec[`${r}.anon`] === myAnon));
          if (!role) continue;
          try {
            matches.push({ stream, id, role, record: decodeCdr(rec) });
          } catch {
            // A record this version cannot read still names the user: list it as stored.
            matches.push({ stream, id, role, record: rec as unknown as CdrRecord });
          }
        }
      }
    }
    matches.sort((a, b) => Number(a.record.createdAt) - Number(b.record.createdAt));

    const lookupId = randomBytes(9).toString('base64url');
    const current = userId ? pseudonymizer.pseudonymize(userId) : null;
    const auditEntryId = await redis.xadd(keys.cdrAudit(), '*',
      'lookupId', lookupId,
      'at', String(Date.now()),
      'operator', req.operator,
      'reason', reason,
      'accountFound', userId ? '1' : '0',
      'subject', current ? current.bill : 'none',
      'subjectKeyVersion', current ? current.billKeyVersion : 'none',
      'keyVersionsTried', userId ? [...pseudonymizer.allVersions('billing', userId).keys()].join(',') : '',
      'records', String(matches.length),
      'shards', String(shards));
    if (!auditEntryId) throw new Error('audit entry was not written');
    return { lookupId, auditEntryId, accountFound: userId !== null, matches };
  }
}

/** Every entry of a stream, oldest first, in pages. */
async function* scan(redis: Redis, stream: string): AsyncGenerator<[string, string[]]> {
  let start = '-';
  for (;;) {
    const page = (await redis.xrange(stream, start, '+', 'COUNT', 1000)) as [string, string[]][];
    for (const entry of page) yield entry;
    if (page.length < 1000) return;
    start = `(${page[page.length - 1]![0]}`;
  }
}
