import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A server-side script run by its SHA (EVALSHA), loaded on demand: after a
 * Redis restart the script cache is empty and the first call falls back to
 * EVAL, which caches it again.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  /** Loads the script so a burst of run() calls goes out as EVALSHA, in order. */
  async load(redis: Redis): Promise<void> {
    await redis.script('LOAD', this.source);
  }
}
