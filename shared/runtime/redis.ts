import { Redis } from 'ioredis';
import type { Logger } from './log.js';

/** A Redis connection with bounded retries and logs that carry no URL secrets. */
export function createRedis(url: string, log: Logger, name: string): Redis {
  const client = new Redis(url, {
    connectionName: name,
    lazyConnect: false,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  let lastError = '';
  client.on('error', (err: Error) => {
    // ioredis repeats the same error on every retry; log changes only.
    if (err.message !== lastError) log.warn({ err: err.message, conn: name }, 'redis error');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) log.info({ conn: name }, 'redis ready again');
    lastError = '';
  });
  return client;
}
