import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from '../keys.js';

export interface SessionRecord {
  sessionId: string;
  deviceId: string;
  createdAt: number;
}

/**
 * Signed-in devices. One session per device sign-in; an access token names its
 * session, so revoking the session (logout, refresh-token reuse, erasure)
 * invalidates its tokens at the next check.
 */
export class Sessions {
  constructor(private readonly redis: Redis) {}

  async create(userId: string, deviceId: string): Promise<SessionRecord> {
    const record: SessionRecord = { sessionId: randomUUID().replace(/-/g, ''), deviceId, createdAt: Date.now() };
    await this.redis.hset(keys.userSessions(userId), record.sessionId, JSON.stringify(record));
    return record;
  }

  async isActive(userId: string, sessionId: string): Promise<boolean> {
    return (await this.redis.hexists(keys.userSessions(userId), sessionId)) === 1;
  }

  async revoke(userId: string, sessionId: string): Promise<void> {
    await this.redis.hdel(keys.userSessions(userId), sessionId);
  }
}
