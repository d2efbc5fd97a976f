import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import type { CallEndedFact } from '../../server/calls/CallEndedFact.js';
import { cdrOf } from '../../server/cdr/registerCdr.js';
import { CdrConsumer, type CdrHandler } from '../../server/cdr/CdrConsumer.js';
import { BILLING_GROUP, BillingAggregator } from '../../server/cdr/BillingAggregator.js';
import { ANALYTICS_GROUP, AnalyticsAggregator } from '../../server/cdr/AnalyticsAggregator.js';
import { utcDay, utcMonth } from '../../server/cdr/periods.js';
import { createLogger } from '../../shared/runtime/log.js';
import { keys } from '../../server/keys.js';
import { TestRedis } from '../support/redis.js';
import { runScript } from '../support/processes.js';
import { startTestHub } from '../support/hub.js';
import { conferenceFacts, DISPOSITION_CASES, oneToOneFact, waitForRecords } from '../support/cdr.js';

const SHARDS = 3;
const log = createLogger({ level: 'silent', name: 'test' });
const DAY_MS = 86_400_000;
/** Every call of this suite happens on one UTC day: yesterday, ending by 13:00. */
const END = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS + 13 * 3_600_000;

describe('CDR consumers: billing and analytics', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let hub: Hub;
  let client: Redis;
  const alice = 'uAliceConsumer01';
  const bob = 'uBobConsumer0002';
  const carol = 'uCarolConsumer03';
  const facts: CallEndedFact[] = [];
  let recorded = 0;

  const consumer = (group: string, handler: CdrHandler, name: string, over: Partial<ConstructorParameters<typeof CdrConsumer>[0]> = {}) =>
    new CdrConsumer({
      redis: client, group, consumer: name, shards: SHARDS, handler, log,
      minIdleMs: 60_000, maxDeliveries: 3, dedupWindowMs: 2 * DAY_MS, ...over,
    });
  const billing = new BillingAggregator(30 * DAY_MS);
  const analytics = new AnalyticsAggregator(30 * DAY_MS);

  async function emit(list: CallEndedFact[]): Promise<void> {
    for (const f of list) hub.ctx.events.emit('call:ended', f);
    facts.push(...list);
    recorded += list.length;
    await cdrOf(hub.ctx).flush();
    const stored = await waitForRecords(client, SHARDS, recorded);
    expect(stored).to.have.length(recorded);
  }

  const today = () => ({ kind: 'day' as const, name: utcDay(END), month: utcMonth(END) });
  const pseudo = (uid: string) => {
    const p = cdrOf(hub.ctx).pseudonymizer.pseudonymize(uid);
    return `${p.billKeyVersion}:${p.bill}`;
  };
  /** Billable seconds per user id as the facts say they should be. */
  function expectedBilling(): Map<string, { out: number; in: number; conf: number }> {
    const out = new Map<string, { out: number; in: number; conf: number }>();
    const row = (uid: string) => out.get(uid) ?? (out.set(uid, { out: 0, in: 0, conf: 0 }), out.get(uid)!);
    for (const f of facts) {
      if (f.answeredAt === undefined || f.kind === 'conference') continue;
      const sec = Math.floor((f.endedAt - f.answeredAt) / 1000);
      if (sec <= 0) continue;
      for (const p of f.kind === 'conference-leg' ? f.parties.slice(0, 1) : f.parties) {
        row(p.userId)[p.role === 'caller' ? 'out' : p.role === 'callee' ? 'in' : 'conf'] += sec;
      }
    }
    return out;
  }
  async function expectBillingMatchesFacts(): Promise<void> {
    const summary = await BillingAggregator.summary(client, today());
    for (const [uid, want] of expectedBilling()) {
      const got = summary.accounts.find((a) => a.account === pseudo(uid));
      expect(got, uid).to.not.equal(undefined);
      expect({ out: got!.out, in: got!.in, conf: got!.conf }, uid).to.deep.equal(want);
    }
  }

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS) });
    client = redis.client();
    await emit([
      ...DISPOSITION_CASES.map((c) => oneToOneFact(alice, bob, c, {}, END)),
      oneToOneFact(bob, alice, DISPOSITION_CASES[0]!, { kind: 'relayed', mediaPath: 'relay', relayNode: 'relay-1' }, END),
      ...conferenceFacts(carol, [alice, bob], 'relay-a', END),
    ]);
  });
  after(async () => {
    client?.disconnect();
    await hub?.close();
    await redis?.stop();
  });

  it('billing: billable seconds per pseudonymous account, per day and month', async () => {
    const c = consumer(BILLING_GROUP, billing.handle, 'billing-1');
    const stats = await c.runOnce();
    expect(stats.applied).to.equal(2 + 3); // two answered 1:1 calls, three legs
    expect(stats.skipped).to.equal(recorded - 5);
    await expectBillingMatchesFacts();
    const day = await BillingAggregator.summary(client, today());
    const month = await BillingAggregator.summary(client, { kind: 'month', name: today().month, month: today().month });
    expect(day.calls).to.equal(2);
    expect(day.legs).to.equal(3);
    expect(month.totalBillsec).to.equal(day.totalBillsec);
    // Accounts appear only as key version + pseudonym.
    for (const a of day.accounts) expect(a.account).to.match(/^1:[A-Za-z0-9_-]{22}$/);
    // Nothing left pending for the group.
    for (let n = 0; n < SHARDS; n++) expect((await client.xpending(keys.cdrShard(n), BILLING_GROUP))[0]).to.equal(0);
  });

  it('analytics: counts per kind, dispositions, setup time, media path share and quality per period', async () => {
    const c = consumer(ANALYTICS_GROUP, analytics.handle, 'analytics-1');
    const stats = await c.runOnce();
    expect(stats, JSON.stringify(stats)).to.include({ applied: recorded, failed: 0 });
    const s = await AnalyticsAggregator.summary(client, today());
    expect(s.records).to.equal(recorded);
    expect(s.kinds).to.deep.equal({ p2p: 6, relayed: 1, conference: 1, 'conference-leg': 3 });
    expect(s.dispositions).to.deep.equal({ ANSWERED: 2, NO_ANSWER: 1, BUSY: 1, FAILED: 1, CANCELLED: 1, DECLINED: 1 });
    expect(s.causes.NORMAL_CLEARING).to.equal(2 + 1 + 3);
    expect(s.setup.count).to.equal(2);
    expect(s.setup.avgMs).to.equal(4200);
    expect(s.setup.p50Ms).to.equal(5000); // bucket bound
    expect(s.mediaPath).to.deep.equal({ direct: { count: 1, share: 0.5 }, relay: { count: 1, share: 0.5 } });
    expect(s.avgTalkSec).to.equal(61);
    // Quality: two answered 1:1 calls with two reports each, three legs with one each.
    expect(s.quality.reports).to.equal(7);
    expect(s.quality.avgRttMs).to.be.closeTo((49 + 51 + 49 + 51 + 30 + 31 + 32) / 7, 1e-9);
    expect(s.quality.avgLossPct).to.be.closeTo((1.2 + 0 + 1.2 + 0 + 0.1 * 3) / 7, 1e-9);
    expect(s.codecs.opus).to.equal(7);
    expect(s.distinctParties).to.equal(3);
  });

  it('counts an event id once however often it is delivered (duplicate entry, full redelivery)', async () => {
    const before = await BillingAggregator.summary(client, today());
    const beforeA = await AnalyticsAggregator.summary(client, today());
    // The same record appended again, as a replay past the writer's window would.
    const answered = (await client.xrange(keys.cdrShard(0), '-', '+')).concat(
      await client.xrange(keys.cdrShard(1), '-', '+'), await client.xrange(keys.cdrShard(2), '-', '+'))
      .find(([, f]) => f[f.indexOf('disposition') + 1] === 'ANSWERED' && f[f.indexOf('kind') + 1] === 'p2p')!;
    await client.xadd(keys.cdrShard(0), '*', ...answered[1]);
    recorded += 1;
    // And every entry delivered to both groups again from the start.
    for (let n = 0; n < SHARDS; n++) {
      await client.xgroup('SETID', keys.cdrShard(n), BILLING_GROUP, '0');
      await client.xgroup('SETID', keys.cdrShard(n), ANALYTICS_GROUP, '0');
    }
    const b = await consumer(BILLING_GROUP, billing.handle, 'billing-2').runOnce();
    const a = await consumer(ANALYTICS_GROUP, analytics.handle, 'analytics-2').runOnce();
    expect(b.applied).to.equal(0);
    expect(b.duplicates).to.equal(6);
    expect(a.applied).to.equal(0);
    expect(a.duplicates).to.equal(recorded);
    expect(await BillingAggregator.summary(client, today())).to.deep.equal(before);
    expect(await AnalyticsAggregator.summary(client, today())).to.deep.equal(beforeA);
  });

  it('takes over entries a crashed consumer left unacknowledged (XAUTOCLAIM), in both groups', async () => {
    await emit([oneToOneFact(carol, alice, DISPOSITION_CASES[0]!, {}, END), oneToOneFact(alice, carol, DISPOSITION_CASES[1]!, {}, END)]);
    // "Crashed" consumers: read with XREADGROUP, never acknowledge.
    for (const group of [BILLING_GROUP, ANALYTICS_GROUP]) {
      let taken = 0;
      for (let n = 0; n < SHARDS; n++) {
        const reply = (await client.xreadgroup('GROUP', group, 'crashed', 'COUNT', 100, 'STREAMS', keys.cdrShard(n), '>')) as [string, unknown[]][] | null;
        taken += reply?.[0]?.[1].length ?? 0;
      }
      expect(taken, group).to.equal(2);
    }
    const beforeA = await AnalyticsAggregator.summary(client, today());
    // A healthy consumer finds nothing new, and nothing idle long enough yet at 60 s.
    const patient = await consumer(BILLING_GROUP, billing.handle, 'billing-3').runOnce();
    expect(patient.claimed).to.equal(0);
    await new Promise((r) => setTimeout(r, 60));
    const b = await consumer(BILLING_GROUP, billing.handle, 'billing-4', { minIdleMs: 50 }).runOnce();
    const a = await consumer(ANALYTICS_GROUP, analytics.handle, 'analytics-4', { minIdleMs: 50 }).runOnce();
    expect(b.claimed).to.equal(2);
    expect(b.applied).to.equal(1); // the answered one; the unanswered one bills nothing
    expect(a.claimed).to.equal(2);
    expect(a.applied).to.equal(2);
    await expectBillingMatchesFacts();
    expect((await AnalyticsAggregator.summary(client, today())).records).to.equal(beforeA.records + 2);
    for (const group of [BILLING_GROUP, ANALYTICS_GROUP]) {
      for (let n = 0; n < SHARDS; n++) expect((await client.xpending(keys.cdrShard(n), group))[0], group).to.equal(0);
    }
  });

  it('moves an entry that keeps failing to cdr:dead and carries on with the rest', async () => {
    const poisonId = await client.xadd(keys.cdrShard(1), '*', 'v', '1', 'eventId', 'poison-1', 'kind', 'teleport');
    recorded += 1;
    await emit([oneToOneFact(bob, carol, DISPOSITION_CASES[0]!, {}, END)]);
    const c = consumer(BILLING_GROUP, billing.handle, 'billing-5', { minIdleMs: 1, maxDeliveries: 3 });
    let total = { applied: 0, failed: 0, deadLettered: 0 };
    for (let i = 0; i < 20 && total.deadLettered === 0; i++) {
      total = await c.runOnce();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(total.deadLettered).to.equal(1);
    expect(total.failed).to.equal(3);
    expect(total.applied).to.equal(1);
    const dead = await client.xrange(keys.cdrDead(), '-', '+');
    expect(dead).to.have.length(1);
    const fields = dead[0]![1];
    const get = (k: string) => fields[fields.indexOf(k) + 1];
    expect(get('eventId')).to.equal('poison-1');
    expect(get('dead.id')).to.equal(poisonId);
    expect(get('dead.stream')).to.equal(keys.cdrShard(1));
    expect(get('dead.group')).to.equal(BILLING_GROUP);
    expect(get('dead.deliveries')).to.equal('3');
    expect(get('dead.error')).to.match(/kind/);
    expect((await client.xpending(keys.cdrShard(1), BILLING_GROUP))[0]).to.equal(0);
    await expectBillingMatchesFacts();
  });

  it('runs continuously until closed', async () => {
    // Earlier tests left entries this group has not read yet: take them first,
    // so the count below moves only by the record this test writes.
    const backlog = consumer(ANALYTICS_GROUP, analytics.handle, 'analytics-backlog', {});
    await backlog.runOnce();
    await backlog.close();
    const before = (await AnalyticsAggregator.summary(client, today())).records;
    const c = consumer(ANALYTICS_GROUP, analytics.handle, 'analytics-loop', { pollMs: 20 });
    c.start();
    await emit([oneToOneFact(carol, bob, DISPOSITION_CASES[4]!, {}, END)]);
    const deadline = Date.now() + 5000;
    while ((await AnalyticsAggregator.summary(client, today())).records === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await c.close();
    await c.close();
    expect((await AnalyticsAggregator.summary(client, today())).records).to.equal(before + 1);
  });

  it('runs as the commands scripts/cdr-billing.ts and scripts/cdr-analytics.ts with readable summaries', async () => {
    await emit([oneToOneFact(alice, carol, DISPOSITION_CASES[0]!, {}, END)]);
    const env = { REDIS_URL: redis.url, CDR_SHARDS: String(SHARDS), LOG_LEVEL: 'silent' };
    const expected = await BillingAggregator.summary(client, today());
    const [bill, stats] = await Promise.all([
      runScript('scripts/cdr-billing.ts', ['--once', '--period', today().name, '--consumer', 'billing-cli'], env),
      runScript('scripts/cdr-analytics.ts', ['--once', '--period', today().name, '--period', today().month, '--consumer', 'analytics-cli'], env),
    ]);
    expect(bill.code, bill.stderr).to.equal(0);
    expect(bill.stdout).to.match(/billing consumer billing-cli: applied 1, /);
    const after = await BillingAggregator.summary(client, today());
    expect(after.totalBillsec).to.equal(expected.totalBillsec + 61);
    expect(bill.stdout).to.contain(`Billing ${today().name} (UTC): ${after.calls} answered calls`);
    expect(bill.stdout).to.contain(`${after.totalBillsec} s`);
    expect(bill.stdout).to.contain(pseudo(alice));
    expect(stats.code, stats.stderr).to.equal(0);
    expect(stats.stdout).to.contain(`Analytics ${today().name} (UTC)`);
    expect(stats.stdout).to.contain(`Analytics ${today().month} (UTC)`);
    expect(stats.stdout).to.match(/1:1 dispositions: ANSWERED \d+/);
    expect(stats.stdout).to.match(/media path of answered 1:1 calls: .*direct \d/);
    const bad = await runScript('scripts/cdr-billing.ts', ['--once', '--period', 'yesterday'], env);
    expect(bad.code).to.equal(64);
  });
});
