import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { decodeCdr, encodeCdr, type CdrRecord } from '../../shared/cdr.js';
import type { CallEndedFact } from '../calls/CallEndedFact.js';
import { keys } from '../keys.js';
import type { Logger } from '../../shared/runtime/log.js';
import { LuaScript } from '../LuaScript.js';
import type { Pseudonymizer } from './Pseudonymizer.js';
import { CdrRefusedError, recordFromFact } from './recordFromFact.js';
import type { Spool } from './Spool.js';
import { dayEnd, utcDay } from './periods.js';

/**
 * Adds a record unless its event id was already added: the marker (a field
 * of the shard's per-day `seen` hash) and the entry are written in one
 * script, so a record replayed from the spool after Redis had in fact taken
 * it is not added twice. Both keys share the shard's hash tag.
 * KEYS: stream, seen hash. ARGV: eventId, marker expiry (epoch ms), MINID, field/value pairs.
 */
const APPEND = new LuaScript(`
local prior = redis.call('HGET', KEYS[2], ARGV[1])
if prior then return {0, prior} end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
return {1, id}
`);

export type WriteOutcome = 'written' | 'duplicate' | 'spooled' | 'dropped';

export interface CdrWriterOptions {
  /** Redis URL; the writer opens its own connection (no offline queue, bounded command time). */
  redisUrl: string;
  pseudonymizer: Pseudonymizer;
  spool: Spool;
  log: Logger;
  /** Number of shard streams. */
  shards: number;
  /** Entries older than this are trimmed as new ones are added (MINID ~). */
  retentionMs: number;
  /** How long past a record's day its event id is remembered. */
  dedupWindowMs: number;
  /** Longest one write may take before the record is spooled. */
  timeoutMs: number;
  /** A refused record rejects write() (tests, development) instead of being dropped with an error log (production). */
  strict: boolean;
  connectionName?: string;
}

export interface CdrWriterStats {
  written: number;
  duplicates: number;
  spooled: number;
  replayed: number;
  dropped: number;
}

/** The shard of a record: a conference and its legs land on the same one. */
export function shardOf(record: Pick<CdrRecord, 'callId' | 'parentId'>, shards: number): number {
  const digest = createHash('sha1').update(record.parentId ?? record.callId).digest();
  return digest.readUInt32BE(0) % shards;
}

/**
 * Turns call-ended facts into records and appends them to the shard streams.
 * Never blocks or fails a call: a write that Redis does not confirm within
 * the timeout (or refuses) goes to the local spool, and while the spool holds
 * anything new records queue behind it so the streams receive them in order.
 * replay() drains the spool; registerCdr runs it on a timer.
 */
export class CdrWriter {
  readonly redis: Redis;
  readonly stats: CdrWriterStats = { written: 0, duplicates: 0, spooled: 0, replayed: 0, dropped: 0 };
  readonly #opts: CdrWriterOptions;
  readonly #inFlight = new Set<Promise<unknown>>();
  #spooling = 0;
  #replaying?: Promise<number>;
  #replayOk = false;
  #closed = false;
  #closing?: Promise<void>;

  constructor(opts: CdrWriterOptions) {
    if (!Number.isInteger(opts.shards) || opts.shards < 1) throw new TypeError('shards must be a positive integer');
    this.#opts = opts;
    let lastError = '';
    this.redis = new Redis(opts.redisUrl, {
      connectionName: opts.connectionName ?? 'cdr-writer',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', (err: Error) => {
      if (err.message !== lastError) opts.log.warn({ err: err.message }, 'cdr writer: redis error');
      lastError = err.message;
    });
    this.redis.on('ready', () => {
      lastError = '';
      if (this.#opts.spool.pending > 0) void this.replay();
    });
  }

  /** Resolves once the connection is ready, or after `timeoutMs` (records spool meanwhile). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.once('ready', onReady);
    });
  }

  /** Records in the spool, waiting for Redis. */
  get spooled(): number {
    return this.#opts.spool.pending + this.#spooling;
  }

  /**
   * Records one call-ended fact. Never rejects for a Redis or disk problem;
   * rejects with CdrRefusedError only in strict mode, for a record that would
   * carry personal data or break the schema (a bug in the fact's producer).
   */
  write(fact: CallEndedFact): Promise<WriteOutcome> {
    let record: CdrRecord;
    try {
      const built = recordFromFact(fact, this.#opts.pseudonymizer);
      record = built.record;
      if (built.sanitized.length) this.#opts.log.warn({ callId: fact.callId, fields: built.sanitized }, 'cdr: replaced values that did not fit');
    } catch (err) {
      const problems = err instanceof CdrRefusedError ? err.problems : [String(err)];
      this.#opts.log.error({ callId: fact.callId, kind: fact.kind, problems }, 'cdr: record refused, not stored');
      this.stats.dropped++;
      return this.#opts.strict ? Promise.reject(err) : Promise.resolve('dropped');
    }
    return this.writeRecord(record);
  }

  /** Appends an already built record (the spool and the benchmark use this). */
  writeRecord(record: CdrRecord): Promise<WriteOutcome> {
    if (this.#closed) {
      this.#opts.log.error({ callId: record.callId }, 'cdr: record after close, not stored');
      this.stats.dropped++;
      return Promise.resolve('dropped');
    }
    const p = this.#writeRecord(record);
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
    return p;
  }

  async #writeRecord(record: CdrRecord): Promise<WriteOutcome> {
    if (this.spooled > 0 || this.#replaying) return this.#toSpool(record);
    try {
      const added = await this.#append(record);
      if (added) this.stats.written++;
      else this.stats.duplicates++;
      return added ? 'written' : 'duplicate';
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message, callId: record.callId }, 'cdr: redis did not take the record; spooling');
      return this.#toSpool(record);
    }
  }

  async #toSpool(record: CdrRecord): Promise<WriteOutcome> {
    this.#spooling++;
    try {
      await this.#opts.spool.append(record);
      this.stats.spooled++;
      return 'spooled';
    } catch (err) {
      this.#opts.log.error({ err: (err as Error).message, callId: record.callId, eventId: record.eventId }, 'cdr: spool append failed; record lost');
      this.stats.dropped++;
      return 'dropped';
    } finally {
      this.#spooling--;
    }
  }

  /** true when added, false when the event id was already in the stream. */
  async #append(record: CdrRecord): Promise<boolean> {
    const { shards, retentionMs, dedupWindowMs } = this.#opts;
    const shard = shardOf(record, shards);
    const ended = Number(record.endedAt);
    const now = Date.now();
    const markerExpiry = Math.max(dayEnd(ended), now) + dedupWindowMs;
    const result = (await APPEND.run(
      this.redis,
      [keys.cdrShard(shard), keys.cdrSeen(shard, utcDay(ended))],
      [record.eventId, markerExpiry, Math.max(0, now - retentionMs), ...encodeCdr(record)],
    )) as [number, string];
    return result[0] === 1;
  }

  /**
   * Writes spooled records to Redis in order, acknowledging each batch to the
   * spool only after Redis confirmed all of it. Stops at the first failure
   * (the rest waits for the next try). Resolves with the number replayed.
   */
  replay(): Promise<number> {
    this.#replaying ??= this.#replay().finally(() => {
      this.#replaying = undefined;
      // Records that queued behind the last batch go now rather than at the next timer tick.
      if (this.#replayOk && this.#opts.spool.pending > 0 && !this.#closed) void this.replay();
    });
    return this.#replaying;
  }

  async #replay(): Promise<number> {
    const spool = this.#opts.spool;
    let total = 0;
    this.#replayOk = false;
    try {
      while (spool.pending > 0) {
        const batch = await spool.peek(200);
        if (batch.lines === 0) break;
        await APPEND.load(this.redis);
        // A record that no longer reads as one (disk damage, a hand-edited file) would block the
        // spool for good: it is logged and skipped, never sent.
        const records = batch.records.filter((r) => {
          try {
            decodeCdr(r as unknown as Record<string, string>);
            return true;
          } catch (err) {
            this.#opts.log.error({ err: (err as Error).message }, 'cdr: unreadable spooled record skipped; lost');
            this.stats.dropped++;
            return false;
          }
        });
        const added = await Promise.all(records.map((r) => this.#append(r)));
        await spool.ack(batch);
        total += records.length;
        this.stats.replayed += added.filter(Boolean).length;
        this.stats.duplicates += added.filter((a) => !a).length;
      }
      this.#replayOk = true;
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message, left: spool.pending }, 'cdr: spool replay paused');
    }
    if (total) this.#opts.log.info({ replayed: total, left: spool.pending }, 'cdr: replayed spooled records');
    return total;
  }

  /** Waits until every write started so far is in Redis or in the spool. */
  async flush(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Flushes pending writes, tries one last replay (bounded), closes the
   * connection. The spool itself belongs to the caller. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.flush();
      this.#closed = true;
      if (this.#opts.spool.pending > 0 && this.redis.status === 'ready') {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.replay(), new Promise((r) => { timer = setTimeout(r, this.#opts.timeoutMs * 2); })]);
        clearTimeout(timer);
      }
      await this.#replaying;
      this.redis.disconnect();
    })();
    return this.#closing;
  }
}
