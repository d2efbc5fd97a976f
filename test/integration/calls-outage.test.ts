import { expect } from 'chai';
import { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import { createLogger } from '../../shared/runtime/log.js';
import { testHubConfig } from '../support/config.js';
import { TestRedis } from '../support/redis.js';
import { eventually } from '../support/relay.js';

describe('calls: a fact whose ended call expired during an outage of every hub', () => {
  let redis: TestRedis;
  let hub: Hub | undefined;

  after(async () => {
    await hub?.close();
    await redis?.stop();
  });

  it('is claimed once and reported as a lost record, never silently dropped', async () => {
    redis = await TestRedis.start();
    const r = redis.client();
    // The fact timer of a call whose hash is gone (its ended retention ran out while no hub ran).
    await r.zadd(keys.callTimers(), Date.now() - 60_000, 'cExpiredCall01|fact');
    r.disconnect();
    const lines: string[] = [];
    hub = await Hub.start(testHubConfig(redis.url), { log: createLogger({ level: 'info', name: 'hub' }, { write: (l: string) => void lines.push(l) }) });
    const lost = await eventually(() => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'call fact claimed but the ended call had expired; its call record is lost'), 'the lost-record error');
    expect(lost).to.include({ level: 50, callId: 'cExpiredCall01' });
    const check = redis.client();
    expect(await check.zcard(keys.callTimers()), 'the entry is consumed, not retried forever').to.equal(0);
    check.disconnect();
  });
});
