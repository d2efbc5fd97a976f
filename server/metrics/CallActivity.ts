import type { Redis } from 'ioredis';
import type { CallEndedFact } from '../calls/CallEndedFact.js';
import { keys } from '../keys.js';

const MINUTE = 60_000;
/** Minute buckets are kept this long: the dashboard shows the last hours. */
const BUCKET_TTL_S = 2 * 86400;

export interface ActivityMinute {
  minute: number;
  counts: Record<string, number>;
}

/**
 * Cluster-wide call activity for operators: per-minute counts of ended calls
 * by kind, disposition and media path, kept in Redis for two days. Each
 * call's fact is emitted exactly once across hubs, so counting facts counts
 * calls. Only enums are stored: no ids of any kind.
 */
export class CallActivity {
  constructor(private readonly redis: Redis) {}

  async record(fact: CallEndedFact): Promise<void> {
    const minute = Math.floor(fact.endedAt / MINUTE) * MINUTE;
    const key = keys.activityMinute(minute);
    const fields = [`kind:${fact.kind}`, `disposition:${fact.disposition}`, `path:${fact.mediaPath}`];
    const m = this.redis.multi();
    for (const f of fields) m.hincrby(key, f, 1);
    if (fact.answeredAt !== undefined) m.hincrby(key, 'setupMsSum', fact.answeredAt - fact.createdAt).hincrby(key, 'answered', 1);
    m.expire(key, BUCKET_TTL_S);
    await m.exec();
  }

  /** The last `minutes` minutes, oldest first (empty minutes included). */
  async recent(minutes: number, now = Date.now()): Promise<ActivityMinute[]> {
    const last = Math.floor(now / MINUTE) * MINUTE;
    const starts = Array.from({ length: minutes }, (_, i) => last - (minutes - 1 - i) * MINUTE);
    const p = this.redis.pipeline();
    for (const s of starts) p.hgetall(keys.activityMinute(s));
    const res = (await p.exec()) ?? [];
    return starts.map((minute, i) => {
      const h = (res[i]?.[1] ?? {}) as Record<string, string>;
      return { minute, counts: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)])) };
    });
  }
}
