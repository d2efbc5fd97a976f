import type { Redis } from 'ioredis';
import { decodeCdr, type CdrRecord } from '../../shared/cdr.js';
import { keys } from '../keys.js';
import type { Logger } from '../../shared/runtime/log.js';
import { LuaScript } from '../LuaScript.js';
import { dayEnd, utcDay, utcMonth } from './periods.js';

/** Add `by` to hash field `field` of `key`. */
export interface CdrIncrement {
  key: string;
  field: string;
  by: number;
  /** The field holds decimals (HINCRBYFLOAT); a field is either always or never float. */
  float?: boolean;
}

/** Add `member` to the HyperLogLog at `key` (distinct counts). */
export interface CdrUnique {
  key: string;
  member: string;
}

/** What one record changes: hash increments, distinct-count members, and when the touched keys expire. */
export interface CdrEffect {
  increments: CdrIncrement[];
  uniques?: CdrUnique[];
  /** key -> expiry (epoch ms), applied after the increments. */
  expireAt?: Record<string, number>;
}

/** Where a record belongs: the UTC day and month of its start (createdAt). */
export interface CdrPeriod {
  day: string;
  month: string;
  /** A key of this group and month (`cdr:{<group>:<month>}:<suffix>`): every key an effect touches must be one. */
  key(suffix: string): string;
}

/**
 * Turns a record into its effect, or null to acknowledge it without effect.
 * Throwing marks the delivery as failed (it is retried, then dead-lettered).
 */
export type CdrHandler = (record: CdrRecord, period: CdrPeriod) => CdrEffect | null;

export interface CdrConsumerOptions {
  /** Commands connection (the consumer issues no blocking reads). Owned by the caller. */
  redis: Redis;
  /** Consumer group name, e.g. `billing`. */
  group: string;
  /** This process's name in the group; a restarted process may reuse it. */
  consumer: string;
  shards: number;
  handler: CdrHandler;
  log: Logger;
  /** Entries another consumer left unacknowledged this long are taken over (XAUTOCLAIM). */
  minIdleMs: number;
  /** A record that failed this many deliveries goes to the dead-letter stream. */
  maxDeliveries: number;
  /** How long past a record's day its event id is remembered per group. */
  dedupWindowMs: number;
  /** Entries read per shard and command. Default 100. */
  batchSize?: number;
  /** Pause when a round found nothing. Default 250 ms. */
  pollMs?: number;
}

export interface CdrConsumerStats {
  /** Records whose effect was applied. */
  applied: number;
  /** Records whose event id this group had already applied. */
  duplicates: number;
  /** Records acknowledged without effect. */
  skipped: number;
  /** Failed deliveries (handler threw, bad record, Redis error). */
  failed: number;
  /** Entries taken over from idle consumers. */
  claimed: number;
  deadLettered: number;
}

/**
 * Applies an effect exactly once per (group, event id): the group's marker
 * for the event and the increments are one script, over keys of one slot
 * (the group's month). A redelivered or duplicated record finds its marker
 * and changes nothing.
 * KEYS: done hash, aggregate keys. ARGV: eventId, done expiry, one expiry per
 * aggregate key (0 = none), then (op, key index, field, value) quadruples:
 * op `i` adds an integer to a hash field, `f` a decimal, `u` adds the field
 * to a HyperLogLog.
 */
const APPLY = new LuaScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
for i = #KEYS + 2, #ARGV, 4 do
  local key = KEYS[tonumber(ARGV[i + 1])]
  local value = ARGV[i + 3]
  if ARGV[i] == 'u' then
    redis.call('PFADD', key, ARGV[i + 2])
  elseif ARGV[i] == 'f' then
    redis.call('HINCRBYFLOAT', key, ARGV[i + 2], value)
  else
    redis.call('HINCRBY', key, ARGV[i + 2], value)
  end
end
for k = 2, #KEYS do
  local at = tonumber(ARGV[k + 1])
  if at > 0 then redis.call('PEXPIREAT', KEYS[k], at) end
end
return 1
`);

type StreamEntry = [id: string, fields: string[] | null];

/**
 * A consumer-group runner over every CDR shard: reads new entries
 * (XREADGROUP, one command per shard so each touches one slot), applies the
 * handler's effect idempotently, acknowledges (XACK), takes over entries
 * that crashed or stuck consumers left pending (XAUTOCLAIM), and moves an
 * entry that failed `maxDeliveries` times to `cdr:dead`. Delivery is
 * at-least-once; the per-group event-id marker makes the effect exactly-once.
 */
export class CdrConsumer {
  readonly stats: CdrConsumerStats = { applied: 0, duplicates: 0, skipped: 0, failed: 0, claimed: 0, deadLettered: 0 };
  readonly #opts: Required<CdrConsumerOptions>;
  readonly #streams: string[];
  #groupsReady = false;
  #closed = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #lastError = '';

  constructor(opts: CdrConsumerOptions) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(opts.group)) throw new TypeError('group must be a short name');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(opts.consumer)) throw new TypeError('consumer must be a short name');
    if (opts.maxDeliveries < 1) throw new TypeError('maxDeliveries must be at least 1');
    this.#opts = { batchSize: 100, pollMs: 250, ...opts };
    this.#streams = Array.from({ length: opts.shards }, (_, n) => keys.cdrShard(n));
  }

  get group(): string {
    return this.#opts.group;
  }

  /** Creates the group on every shard (from the start of each stream) if missing. */
  async ensureGroups(): Promise<void> {
    if (this.#groupsReady) return;
    await Promise.all(this.#streams.map(async (stream) => {
      try {
        await this.#opts.redis.xgroup('CREATE', stream, this.#opts.group, '0', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('BUSYGROUP')) throw err;
      }
    }));
    this.#groupsReady = true;
  }

  /**
   * Processes everything available now: all new entries, then entries idle
   * longer than minIdleMs in any consumer's pending list. Resolves when a
   * round finds nothing more.
   */
  async runOnce(): Promise<CdrConsumerStats> {
    await this.ensureGroups();
    while (!this.#closed && (await this.#readRound()) > 0);
    while (!this.#closed && (await this.#claimRound()) > 0);
    return { ...this.stats };
  }

  /** Runs until close(): new entries continuously, idle ones every minIdleMs / 2. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    let nextClaim = 0;
    while (!this.#closed) {
      let found = 0;
      try {
        await this.ensureGroups();
        found = await this.#readRound();
        if (Date.now() >= nextClaim) {
          found += await this.#claimRound();
          nextClaim = Date.now() + Math.max(500, this.#opts.minIdleMs / 2);
        }
        if (this.#lastError) this.#opts.log.info({ group: this.#opts.group }, 'cdr consumer: redis back');
        this.#lastError = '';
      } catch (err) {
        const message = (err as Error).message;
        if (message !== this.#lastError) this.#opts.log.warn({ group: this.#opts.group, err: message }, 'cdr consumer: round failed');
        this.#lastError = message;
        await this.#sleep(Math.max(this.#opts.pollMs, 1000));
        continue;
      }
      if (found === 0) await this.#sleep(this.#opts.pollMs);
    }
  }

  /** Stops the loop after the entry in hand. Idempotent; the Redis connection is the caller's. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #readRound(): Promise<number> {
    const { redis, group, consumer, batchSize } = this.#opts;
    const replies = await Promise.all(this.#streams.map((stream) =>
      redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'STREAMS', stream, '>') as Promise<[string, StreamEntry[]][] | null>));
    let count = 0;
    for (const reply of replies) {
      for (const [stream, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          if (this.#closed) return count;
          count++;
          await this.#handle(stream, id, fields, 1);
        }
      }
    }
    return count;
  }

  async #claimRound(): Promise<number> {
    const { redis, group, consumer, batchSize, minIdleMs, maxDeliveries } = this.#opts;
    let count = 0;
    for (const stream of this.#streams) {
      let cursor = '0-0';
      do {
        const [next, entries] = (await redis.xautoclaim(stream, group, consumer, minIdleMs, cursor, 'COUNT', batchSize)) as [string, StreamEntry[], string[]?];
        cursor = next;
        for (const [id, fields] of entries) {
          if (this.#closed) return count;
          count++;
          this.stats.claimed++;
          const pending = (await redis.xpending(stream, group, id, id, 1)) as [string, string, number, number][];
          const deliveries = pending[0]?.[3] ?? 1;
          // Delivered more often than allowed yet never failed cleanly: it crashed its consumers.
          if (deliveries > maxDeliveries) await this.#deadLetter(stream, id, fields, deliveries, 'crashed its consumers');
          else await this.#handle(stream, id, fields, deliveries);
        }
      } while (cursor !== '0-0' && !this.#closed);
    }
    return count;
  }

  async #handle(stream: string, id: string, fields: string[] | null, deliveries: number): Promise<void> {
    const { redis, group } = this.#opts;
    try {
      if (fields === null) {
        // Trimmed while pending: nothing left to process.
        await redis.xack(stream, group, id);
        return;
      }
      const record = decodeCdr(fields);
      const effect = this.#opts.handler(record, this.#period(record));
      if (effect === null) this.stats.skipped++;
      else if (await this.#apply(record, effect)) this.stats.applied++;
      else this.stats.duplicates++;
      await redis.xack(stream, group, id);
    } catch (err) {
      this.stats.failed++;
      const message = err instanceof Error ? err.message : String(err);
      this.#opts.log.warn({ group, stream, id, deliveries, err: message.slice(0, 300) }, 'cdr consumer: record failed');
      if (deliveries >= this.#opts.maxDeliveries) {
        await this.#deadLetter(stream, id, fields, deliveries, message).catch((e: Error) =>
          this.#opts.log.error({ group, stream, id, err: e.message }, 'cdr consumer: dead-lettering failed'));
      }
    }
  }

  #period(record: CdrRecord): CdrPeriod {
    const created = Number(record.createdAt);
    const month = utcMonth(created);
    const group = this.#opts.group;
    return { day: utcDay(created), month, key: (suffix) => keys.cdrGroupMonth(group, month, suffix) };
  }

  async #apply(record: CdrRecord, effect: CdrEffect): Promise<boolean> {
    const created = Number(record.createdAt);
    const period = this.#period(record);
    const doneKey = period.key(`done:${period.day}`);
    const slotTag = `{${this.#opts.group}:${period.month}}`;
    const aggregateKeys: string[] = [];
    const index = new Map<string, number>();
    const keyIndex = (key: string) => {
      if (!key.includes(slotTag)) throw new Error(`effect key ${key} is outside the record's slot ${slotTag}`);
      let i = index.get(key);
      if (i === undefined) {
        aggregateKeys.push(key);
        i = aggregateKeys.length + 1; // KEYS[1] is the done hash
        index.set(key, i);
      }
      return i;
    };
    const args: (string | number)[] = [];
    for (const inc of effect.increments) {
      if (!Number.isFinite(inc.by) || (!inc.float && !Number.isSafeInteger(inc.by))) {
        throw new Error(`effect increment for ${inc.field} is not ${inc.float ? 'a number' : 'an integer'}`);
      }
      args.push(inc.float ? 'f' : 'i', keyIndex(inc.key), inc.field, String(inc.by));
    }
    for (const u of effect.uniques ?? []) args.push('u', keyIndex(u.key), u.member, '1');
    const expiries = aggregateKeys.map((k) => effect.expireAt?.[k] ?? 0);
    const doneExpiry = Math.max(dayEnd(created), Date.now()) + this.#opts.dedupWindowMs;
    const result = await APPLY.run(this.#opts.redis, [doneKey, ...aggregateKeys], [record.eventId, doneExpiry, ...expiries, ...args]);
    return result === 1;
  }

  async #deadLetter(stream: string, id: string, fields: string[] | null, deliveries: number, error: string): Promise<void> {
    const { redis, group } = this.#opts;
    await redis.xadd(keys.cdrDead(), '*',
      ...(fields ?? []),
      'dead.stream', stream, 'dead.id', id, 'dead.group', group,
      'dead.deliveries', String(deliveries), 'dead.error', error.slice(0, 300), 'dead.at', String(Date.now()));
    await redis.xack(stream, group, id);
    this.stats.deadLettered++;
    this.#opts.log.error({ group, stream, id, deliveries }, 'cdr consumer: record moved to cdr:dead');
  }
}
