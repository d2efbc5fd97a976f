import { expect } from 'chai';
import { eligibleNodes, pickLowest, placementScore, twoRandomChoices } from '../../server/relay/placement.js';
import type { RelayNodeReport } from '../../shared/protocol/relayControl.js';
import { ConfigError } from '../../shared/env.js';
import { loadRelayConfig } from '../../relay/config.js';

function report(nodeId: string, load: number, state: 'serving' | 'draining' = 'serving'): RelayNodeReport {
  return {
    nodeId, controlUrl: `http://${nodeId}:4000`, state, load, reportedAt: 0, intervalMs: 2000, startedAt: 0,
    counts: { rooms: 0, peers: 0, routers: 0, transports: 0, producers: 0, consumers: 0 }, workers: [],
  };
}

/** A deterministic PRNG (mulberry32) so sampling tests are repeatable. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const policy = { maxLoad: 0.8, roomCost: 0.02 };

describe('relay placement', () => {
  it('leaves out draining and overloaded nodes', () => {
    const nodes = [report('a', 0.2), report('b', 0.85), report('c', 0.1, 'draining'), report('d', 0.8)];
    expect(eligibleNodes(nodes, policy).map((n) => n.nodeId)).to.deep.equal(['a', 'd']);
  });

  it('falls back to every serving node when all are overloaded, but never to a draining one', () => {
    expect(eligibleNodes([report('a', 0.95), report('b', 0.9), report('c', 0, 'draining')], policy).map((n) => n.nodeId)).to.deep.equal(['a', 'b']);
    expect(eligibleNodes([report('c', 0, 'draining')], policy)).to.deep.equal([]);
    expect(eligibleNodes([], policy)).to.deep.equal([]);
  });

  it('samples two distinct nodes, each pair about equally often', () => {
    const items = ['a', 'b', 'c', 'd'];
    const random = seeded(42);
    const pairs = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const [x, y] = twoRandomChoices(items, random);
      expect(x).to.not.equal(y);
      const key = [x, y].sort().join('');
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
    expect(pairs.size).to.equal(6);
    for (const count of pairs.values()) expect(count).to.be.within(850, 1150);
    expect(twoRandomChoices(['only'], random)).to.deep.equal(['only']);
    expect(twoRandomChoices([], random)).to.deep.equal([]);
  });

  it('picks the lower score, the first candidate on ties', () => {
    expect(pickLowest([0.3, 0.2])).to.equal(1);
    expect(pickLowest([0.2, 0.2])).to.equal(0);
    expect(pickLowest([0.5])).to.equal(0);
  });

  it('spreads a burst by counting recent placements into the load', () => {
    // Node a reports a little more load than b. By reports alone every room
    // of a burst goes to b; with each placement counted, they alternate.
    const loads = { a: 0.02, b: 0 };
    const placed = { a: 0, b: 0 };
    const random = seeded(7);
    for (let i = 0; i < 20; i++) {
      const candidates = twoRandomChoices(['a', 'b'] as const, random);
      const chosen = candidates[pickLowest(candidates.map((c) => placementScore(loads[c], placed[c], policy)))]!;
      placed[chosen] += 1;
    }
    expect(Math.abs(placed.a - placed.b)).to.be.at.most(2);

    const herd = { a: 0, b: 0 };
    for (let i = 0; i < 20; i++) {
      const candidates = twoRandomChoices(['a', 'b'] as const, random);
      herd[candidates[pickLowest(candidates.map((c) => placementScore(loads[c], herd[c], { roomCost: 0 })))]!] += 1;
    }
    expect(herd).to.deep.equal({ a: 0, b: 20 });
  });
});

describe('relay config', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:1', RELAY_SECRET: 'x'.repeat(32) };

  it('applies documented defaults', () => {
    const cfg = loadRelayConfig(base);
    expect(cfg.RELAY_RTC_LISTEN_IP).to.equal('127.0.0.1');
    expect(cfg.RELAY_RTC_PORT_BASE).to.equal(44444);
    expect(cfg.RELAY_CONSUMERS_PER_WORKER).to.equal(500);
    expect(cfg.LOAD_REPORT_INTERVAL_MS).to.equal(2000);
    expect(cfg.RELAY_WORKERS).to.be.at.least(1);
  });

  it('refuses a wildcard listen address without an announced one, and a short secret', () => {
    expect(() => loadRelayConfig({ ...base, RELAY_RTC_LISTEN_IP: '0.0.0.0' })).to.throw(ConfigError, /RELAY_RTC_ANNOUNCED_IP/);
    expect(loadRelayConfig({ ...base, RELAY_RTC_LISTEN_IP: '0.0.0.0', RELAY_RTC_ANNOUNCED_IP: '203.0.113.7' }).RELAY_RTC_ANNOUNCED_IP).to.equal('203.0.113.7');
    expect(() => loadRelayConfig({ ...base, RELAY_SECRET: 'short' })).to.throw(ConfigError, /RELAY_SECRET/);
  });
});
