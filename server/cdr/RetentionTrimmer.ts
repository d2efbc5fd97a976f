import type { Redis } from 'ioredis';
import { keys } from '../keys.js';
import type { Logger } from '../../shared/runtime/log.js';

export interface RetentionTrimmerOptions {
  shards: number;
  /** Call records and dead letters older than this go. */
  retentionMs: number;
  /** Support-lookup audit entries older than this go. */
  auditRetentionMs: number;
  log: Logger;
}

/**
 * Enforces retention by stream id time (XTRIM MINID, exact): ids begin with
 * the millisecond the entry was added, so everything below `now - retention`
 * is older than allowed. The writer already trims approximately on every
 * XADD; this pass is exact, covers streams that get no new entries (quiet
 * shards, dead letters, audit) and runs on every hub (idempotent, cheap).
 */
export class RetentionTrimmer {
  readonly #redis: Redis;
  readonly #opts: RetentionTrimmerOptions;
  #timer?: NodeJS.Timeout;
  #running?: Promise<number>;

  constructor(redis: Redis, opts: RetentionTrimmerOptions) {
    this.#redis = redis;
    this.#opts = opts;
  }

  /** Trims every stream once; resolves with the number of entries removed. */
  trimNow(now = Date.now()): Promise<number> {
    this.#running ??= this.#trim(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #trim(now: number): Promise<number> {
    const { shards, retentionMs, auditRetentionMs } = this.#opts;
    const recordsMin = String(Math.max(0, now - retentionMs));
    const auditMin = String(Math.max(0, now - auditRetentionMs));
    const targets: [string, string][] = [];
    for (let n = 0; n < shards; n++) targets.push([keys.cdrShard(n), recordsMin]);
    targets.push([keys.cdrDead(), recordsMin], [keys.cdrAudit(), auditMin]);
    // One command per stream: each touches a single slot, as Redis Cluster requires.
    const removed = await Promise.all(targets.map(([key, min]) => this.#redis.xtrim(key, 'MINID', min)));
    const total = removed.reduce((a, b) => a + b, 0);
    if (total) this.#opts.log.info({ removed: total }, 'cdr: trimmed entries past retention');
    return total;
  }

  /** Trims now and then every `intervalMs` until close(). */
  start(intervalMs: number): void {
    if (this.#timer) return;
    const tick = () => {
      this.trimNow().catch((err: Error) => this.#opts.log.warn({ err: err.message }, 'cdr: retention trim failed'));
    };
    this.#timer = setInterval(tick, intervalMs);
    this.#timer.unref();
    tick();
  }

  /** Stops the timer and waits for a running pass. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}
