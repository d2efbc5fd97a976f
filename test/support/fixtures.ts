import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { FactLog } from './calls.js';
import { startTestHub } from './hub.js';
import { TestRedis } from './redis.js';
import { WebhookReceiver } from './webhookReceiver.js';

/**
 * Suite fixtures: the parts a test file starts in its `before` hook, and one
 * `stop()` for its `after` hook. Each file passes its own hub overrides.
 */

type Stop = () => unknown;

/**
 * Runs `start`, which hands each part's stop to `onStop` as soon as that part
 * runs. If `start` fails, what it had started is stopped before the error is
 * rethrown; otherwise the parts come back with a `stop()` that stops them
 * last started first (calling it again does nothing).
 */
async function startParts<T extends object>(start: (onStop: (stop: Stop) => void) => Promise<T>): Promise<T & { stop(): Promise<void> }> {
  const stops: Stop[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s();
  };
  try {
    const parts = await start((s) => stops.push(s));
    return { ...parts, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface IdentityFixture {
  redis: TestRedis;
  /** A client of the test's own on the hub's Redis, to check what the hub stored. */
  store: Redis;
  /** The SMS/voice gateway the hub's webhook code provider delivers to. */
  receiver: WebhookReceiver;
  hub: Hub;
  stop(): Promise<void>;
}

/** A private Redis, a webhook receiver, and a hub that sends its codes there, with `overrides` on top. */
export function identityFixture(overrides: Record<string, string>): Promise<IdentityFixture> {
  return startParts(async (onStop) => {
    const redis = await TestRedis.start();
    onStop(() => redis.stop());
    const store = redis.client();
    onStop(() => store.disconnect());
    const receiver = await WebhookReceiver.start();
    onStop(() => receiver.close());
    const hub = await startTestHub(redis.url, { ...receiver.hubEnv(), ...overrides });
    onStop(() => hub.close());
    return { redis, store, receiver, hub };
  });
}

export interface CallsFixture {
  redis: TestRedis;
  hub: Hub;
  /** Every call-ended fact the hub emits. */
  facts: FactLog;
  stop(): Promise<void>;
}

/** A private Redis and a hub configured by `overrides`, with its call-ended facts collected. */
export function callsFixture(overrides: Record<string, string>): Promise<CallsFixture> {
  return startParts(async (onStop) => {
    const redis = await TestRedis.start();
    onStop(() => redis.stop());
    const hub = await startTestHub(redis.url, overrides);
    onStop(() => hub.close());
    return { redis, hub, facts: new FactLog(hub) };
  });
}
