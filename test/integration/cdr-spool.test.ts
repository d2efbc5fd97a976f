import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { cdrOf } from '../../server/cdr/registerCdr.js';
import { recordFromFact } from '../../server/cdr/recordFromFact.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { DISPOSITION_CASES, oneToOneFact, readAllRecords } from '../support/cdr.js';

const SHARDS = 3;

/** Polls `check` until it returns true or the time is up. */
async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function countByEventId(records: { fields: Record<string, string> }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.fields.eventId!, (counts.get(r.fields.eventId!) ?? 0) + 1);
  return counts;
}

describe('CDR spool and replay across a Redis stop and start', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let client: Redis;
  const spoolDir = `/tmp/callhub-spool-it-${randomBytes(4).toString('hex')}`;
  const env = {
    CDR_SHARDS: String(SHARDS),
    CDR_WRITE_TIMEOUT_MS: '300',
    CDR_SPOOL_REPLAY_MS: '100',
    CDR_SPOOL_DIR: spoolDir,
    CDR_PSEUDONYM_KEYS_BILLING: `1:${randomBytes(24).toString('hex')}`,
    CDR_PSEUDONYM_KEYS_ANALYTICS: `1:${randomBytes(24).toString('hex')}`,
  };

  before(async () => {
    redis = await TestRedis.start({ appendOnly: true });
    client = redis.client();
    client.on('error', () => undefined); // it reconnects by itself after each pause
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('spools records while Redis is down and replays each exactly once, in order, when it is back', async () => {
    const hub: Hub = await startTestHub(redis.url, env);
    try {
      const cdr = cdrOf(hub.ctx);
      const emit = (n: number) => {
        const ids: string[] = [];
        for (let i = 0; i < n; i++) {
          const fact = oneToOneFact('uSpoolCaller001', 'uSpoolCallee002', DISPOSITION_CASES[i % DISPOSITION_CASES.length]!);
          ids.push(fact.callId);
          hub.ctx.events.emit('call:ended', fact);
        }
        return ids;
      };
      const before = emit(5);
      await cdr.flush();
      expect(cdr.writer.stats.written).to.equal(5);

      await redis.pause();
      const during = emit(20);
      await cdr.flush();
      expect(cdr.spool.pending).to.equal(20);
      // Records written while the spool is non-empty queue behind it.
      expect(cdr.writer.stats.spooled).to.equal(20);

      await redis.resume();
      await until(() => cdr.spool.pending === 0);
      const after = emit(5);
      await cdr.flush();
      await until(() => cdr.spool.pending === 0);

      const stored = await readAllRecords(client, SHARDS);
      const counts = countByEventId(stored);
      expect(stored).to.have.length(30);
      expect([...counts.values()].every((c) => c === 1)).to.equal(true);
      const callIds = new Set(stored.map((s) => s.fields.callId));
      for (const id of [...before, ...during, ...after]) expect(callIds.has(id), id).to.equal(true);
      // Within each shard, spooled records arrive in the order the calls ended.
      for (let n = 0; n < SHARDS; n++) {
        const order = stored.filter((s) => s.stream === `cdr:{${n}}` && during.includes(s.fields.callId!)).map((s) => during.indexOf(s.fields.callId!));
        expect(order).to.deep.equal([...order].sort((x, y) => x - y));
      }
    } finally {
      await hub.close();
    }
  });

  it('does not add a record twice when Redis took it but the writer spooled it anyway, and skips a damaged one', async () => {
    const hub: Hub = await startTestHub(redis.url, env);
    try {
      const cdr = cdrOf(hub.ctx);
      const { record } = recordFromFact(oneToOneFact('uAckLost000001', 'uAckLost000002', DISPOSITION_CASES[0]!), cdr.pseudonymizer);
      expect(await cdr.writer.writeRecord(record)).to.equal('written');
      // As if the confirmation had been lost on the way back: the same record is in the spool,
      // behind a damaged one that must not block it.
      await cdr.spool.append({ v: '1', eventId: 'damaged' } as unknown as typeof record);
      await cdr.spool.append(record);
      const duplicatesBefore = cdr.writer.stats.duplicates;
      const droppedBefore = cdr.writer.stats.dropped;
      await cdr.writer.replay();
      expect(cdr.spool.pending).to.equal(0);
      expect(cdr.writer.stats.duplicates).to.equal(duplicatesBefore + 1);
      expect(cdr.writer.stats.dropped).to.equal(droppedBefore + 1);
      const stored = await readAllRecords(client, SHARDS);
      expect(stored.filter((s) => s.fields.eventId === record.eventId)).to.have.length(1);
    } finally {
      await hub.close();
    }
  });

  it('spools writes that a slow Redis does not confirm in time, and does not double the ones it applies late', async () => {
    const hub: Hub = await startTestHub(redis.url, env);
    try {
      const cdr = cdrOf(hub.ctx);
      // One record first, so the script is cached as it is after a hub's first call.
      hub.ctx.events.emit('call:ended', oneToOneFact('uSlowRedis0001', 'uSlowRedis0002', DISPOSITION_CASES[0]!));
      await cdr.flush();
      const before = cdr.writer.stats.duplicates;
      // Redis holds every write (scripts included) for a second: longer than the writer waits.
      await client.call('CLIENT', 'PAUSE', '1000', 'WRITE');
      const callIds: string[] = [];
      for (let i = 0; i < 10; i++) {
        const fact = oneToOneFact('uSlowRedis0001', 'uSlowRedis0002', DISPOSITION_CASES[i % 6]!);
        callIds.push(fact.callId);
        hub.ctx.events.emit('call:ended', fact);
      }
      await cdr.flush();
      expect(cdr.spool.pending).to.equal(10);
      // When Redis resumes, it applies the writes it held; the replay then finds their markers.
      await until(() => cdr.spool.pending === 0);
      const stored = await readAllRecords(client, SHARDS);
      const mine = stored.filter((s) => callIds.includes(s.fields.callId!));
      expect(mine).to.have.length(10);
      expect([...countByEventId(stored).values()].every((c) => c === 1)).to.equal(true);
      expect(cdr.writer.stats.duplicates - before).to.equal(10);
    } finally {
      await hub.close();
    }
  });

  it('keeps spooled records across a hub restart and replays them from the next hub', async () => {
    const first: Hub = await startTestHub(redis.url, env);
    const callIds: string[] = [];
    await redis.pause();
    try {
      for (let i = 0; i < 8; i++) {
        const fact = oneToOneFact('uRestart000001', 'uRestart000002', DISPOSITION_CASES[i % 6]!);
        callIds.push(fact.callId);
        first.ctx.events.emit('call:ended', fact);
      }
      await cdrOf(first.ctx).flush();
      expect(cdrOf(first.ctx).spool.pending).to.equal(8);
    } finally {
      await first.close();
      await redis.resume();
    }
    const second: Hub = await startTestHub(redis.url, env);
    try {
      await until(() => cdrOf(second.ctx).spool.pending === 0);
      const stored = await readAllRecords(client, SHARDS);
      const mine = stored.filter((s) => callIds.includes(s.fields.callId!));
      expect(mine).to.have.length(8);
      expect([...countByEventId(stored).values()].every((c) => c === 1)).to.equal(true);
    } finally {
      await second.close();
    }
  });
});
