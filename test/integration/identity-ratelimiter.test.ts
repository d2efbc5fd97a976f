import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { RateLimiter } from '../../server/identity/RateLimiter.js';
import { TestRedis } from '../support/redis.js';

/** The shared Redis rate limiter: sliding and fixed windows, retryAfter, refunds, all-or-nothing, atomicity. */
describe('RateLimiter', () => {
  let redis: TestRedis;
  let client: Redis;
  let limiter: RateLimiter;
  let n = 0;
  const key = () => `rl:test:{k${++n}}`;

  before(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    limiter = new RateLimiter(client);
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('sliding: allows `limit` hits per window, then refuses with retryAfter; peek takes nothing', async () => {
    const k = key();
    const lim = { limit: 3, windowSeconds: 60 };
    expect((await limiter.peek(k, lim)).remaining).to.equal(3);
    for (const left of [2, 1, 0]) {
      const d = await limiter.consume(k, lim);
      expect(d).to.include({ allowed: true, remaining: left, retryAfter: 0 });
    }
    const refused = await limiter.consume(k, lim);
    expect(refused.allowed).to.equal(false);
    expect(refused.retryAfter).to.be.within(1, 60);
    expect(await client.zcard(k)).to.equal(3);
    expect(await client.pttl(k)).to.be.within(1, 60_000);
  });

  it('sliding: the window really slides (old hits age out)', async () => {
    const k = key();
    const lim = { limit: 2, windowSeconds: 1 };
    await limiter.consume(k, lim);
    await limiter.consume(k, lim);
    expect((await limiter.consume(k, lim)).allowed).to.equal(false);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await limiter.consume(k, lim)).allowed).to.equal(true);
  });

  it('fixed: counts costs, refuses what does not fit (taking nothing), and refunds', async () => {
    const k = key();
    const lim = { limit: 10, windowSeconds: 3600, kind: 'fixed' as const };
    const a = await limiter.consume(k, lim, 7);
    expect(a).to.include({ allowed: true, remaining: 3 });
    const b = await limiter.consume(k, lim, 4);
    expect(b).to.include({ allowed: false, remaining: 3 });
    expect(b.retryAfter).to.be.within(3590, 3600);
    expect(await client.get(k)).to.equal('7');
    await a.refund();
    expect(await client.exists(k)).to.equal(0);
    expect((await limiter.consume(k, lim, 11)).allowed).to.equal(false);
  });

  it('consumeAll takes from every limit or from none', async () => {
    const [k1, k2, k3] = [key(), key(), key()];
    const one = { limit: 1, windowSeconds: 60 };
    const five = { limit: 5, windowSeconds: 60 };
    await limiter.consume(k3, one);
    const result = await limiter.consumeAll([
      { name: 'a', key: k1, limit: five },
      { name: 'b', key: k2, limit: five },
      { name: 'c', key: k3, limit: one },
    ]);
    expect(result).to.deep.include({ allowed: false, name: 'c' });
    expect(await client.zcard(k1)).to.equal(0);
    expect(await client.zcard(k2)).to.equal(0);
    expect(await limiter.consumeAll([{ name: 'a', key: k1, limit: five }, { name: 'b', key: k2, limit: five }])).to.deep.equal({ allowed: true });
    expect(await client.zcard(k1)).to.equal(1);
  });

  it('is atomic under concurrency: exactly `limit` of many simultaneous hits pass', async () => {
    for (const kind of ['sliding', 'fixed'] as const) {
      const k = key();
      const results = await Promise.all(Array.from({ length: 40 }, () => limiter.consume(k, { limit: 7, windowSeconds: 60, kind })));
      expect(results.filter((r) => r.allowed), kind).to.have.length(7);
    }
  });

  it('rejects nonsense limits before touching Redis', async () => {
    for (const [lim, cost] of [[{ limit: 0, windowSeconds: 1 }, 1], [{ limit: 1, windowSeconds: 0.5 }, 1], [{ limit: 1, windowSeconds: 1 }, 0], [{ limit: 1, windowSeconds: 1 }, 20_000]] as const) {
      let threw = false;
      await limiter.consume(key(), lim, cost).catch((e: unknown) => { threw = e instanceof TypeError; });
      expect(threw, JSON.stringify([lim, cost])).to.equal(true);
    }
  });
});
