import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { CallEndedFact } from '../../server/calls/CallEndedFact.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';

const ADMIN_TOKEN = 'operator-token-0123456789';

function fact(over: Partial<CallEndedFact>): CallEndedFact {
  const now = Date.now();
  return {
    callId: `c${Math.random().toString(36).slice(2)}`, kind: 'p2p', parties: [{ userId: 'u-secret-id', role: 'caller' }],
    createdAt: now - 10_000, endedAt: now, disposition: 'NO_ANSWER', endReason: 'no_answer', hangupBy: 'system',
    mediaPath: 'none', participantCount: 2, ...over,
  };
}

describe('operator dashboard', () => {
  let redis: TestRedis;
  let hub: Hub;
  let second: Hub;

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url, { ADMIN_TOKEN });
    second = await startTestHub(redis.url, { ADMIN_TOKEN });
  });
  after(async () => {
    await second?.close();
    await hub?.close();
    await redis?.stop();
  });

  const get = (path: string, token?: string) =>
    fetch(`${hub.url}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });

  it('serves the page, but its data only with the operator token', async () => {
    const page = await get('/admin');
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('callhub operations');
    expect((await get('/admin/activity')).status).to.equal(401);
    expect((await get('/admin/activity', 'wrong-token-wrong-token')).status).to.equal(401);
    expect((await get('/admin/activity?minutes=0', ADMIN_TOKEN)).status).to.equal(400);
  });

  it('counts calls ended on any hub, by disposition and path, without ids', async () => {
    const now = Date.now();
    hub.ctx.events.emit('call:ended', fact({ disposition: 'ANSWERED', endReason: 'completed', mediaPath: 'direct', createdAt: now - 10_000, answeredAt: now - 8000 }));
    second.ctx.events.emit('call:ended', fact({ kind: 'relayed', disposition: 'ANSWERED', endReason: 'completed', mediaPath: 'relay', createdAt: now - 10_000, answeredAt: now - 6000 }));
    second.ctx.events.emit('call:ended', fact({}));
    // Recording is asynchronous (it must never delay a call): poll the endpoint.
    let body: { hubs: number; minutes: { counts: Record<string, number> }[] } | undefined;
    for (let i = 0; i < 50; i++) {
      body = (await (await get('/admin/activity?minutes=5', ADMIN_TOKEN)).json()) as typeof body;
      const total = body!.minutes.reduce((n, m) => n + (m.counts['disposition:ANSWERED'] ?? 0) + (m.counts['disposition:NO_ANSWER'] ?? 0), 0);
      if (total === 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const sum = (k: string) => body!.minutes.reduce((n, m) => n + (m.counts[k] ?? 0), 0);
    expect(sum('disposition:ANSWERED')).to.equal(2);
    expect(sum('disposition:NO_ANSWER')).to.equal(1);
    expect(sum('path:relay')).to.equal(1);
    expect(sum('kind:relayed')).to.equal(1);
    expect(sum('setupMsSum')).to.equal(2000 + 4000);
    expect(body!.hubs).to.equal(2);
    expect(JSON.stringify(body)).not.to.contain('u-secret-id');
  });
});
