import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { cdrOf } from '../../server/cdr/registerCdr.js';
import { shardOf } from '../../server/cdr/CdrWriter.js';
import { recordFromFact } from '../../server/cdr/recordFromFact.js';
import { keys } from '../../server/keys.js';
import { decodeCdr } from '../../shared/cdr.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { createUser, type TestUser } from '../support/users.js';
import {
  conferenceFacts, DISPOSITION_CASES, oneToOneFact, personalDataFindings, readAllRecords, waitForRecords,
} from '../support/cdr.js';

const SHARDS = 4;

describe('CDR writer (hub)', () => {
  let redis: TestRedis;
  let hub: Hub;
  let client: Redis;
  let users: TestUser[];

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS) });
    client = redis.client();
    users = [];
    for (let i = 0; i < 4; i++) users.push(await createUser(hub, { displayName: `Person Number${i} Smith` }));
  });
  after(async () => {
    client?.disconnect();
    await hub?.close();
    await redis?.stop();
  });

  it('stores one record per call-ended fact, for every disposition, in the shard of its call', async () => {
    const [a, b] = users;
    const facts = DISPOSITION_CASES.map((c) => oneToOneFact(a!.userId, b!.userId, c));
    for (const fact of facts) hub.ctx.events.emit('call:ended', fact);
    await cdrOf(hub.ctx).flush();
    const stored = await waitForRecords(client, SHARDS, facts.length);
    expect(stored).to.have.length(facts.length);
    for (const fact of facts) {
      const mine = stored.filter((s) => s.fields.callId === fact.callId);
      expect(mine, fact.disposition).to.have.length(1);
      const entry = mine[0]!;
      const record = decodeCdr(entry.fields);
      expect(entry.stream).to.equal(keys.cdrShard(shardOf(record, SHARDS)));
      expect(record.disposition).to.equal(fact.disposition);
      expect(record.kind).to.equal('p2p');
      expect(record.createdAt).to.equal(String(fact.createdAt));
      expect(record.endedAt).to.equal(String(fact.endedAt));
      expect(record.billsec).to.equal(fact.answeredAt ? String(Math.floor((fact.endedAt - fact.answeredAt) / 1000)) : '0');
      // The stream id's time is when it was written: retention counts from there.
      expect(Number(entry.id.split('-')[0])).to.be.closeTo(Date.now(), 60_000);
    }
    expect(new Set(stored.map((s) => s.fields.eventId)).size).to.equal(stored.length);
  });

  it('stores a conference summary and one record per leg', async () => {
    const [a, b, c, d] = users;
    const facts = conferenceFacts(a!.userId, [b!.userId, c!.userId, d!.userId], 'relay-eu-1');
    const before = (await readAllRecords(client, SHARDS)).length;
    for (const fact of facts) hub.ctx.events.emit('call:ended', fact);
    await cdrOf(hub.ctx).flush();
    const stored = (await waitForRecords(client, SHARDS, before + facts.length)).slice();
    const conf = stored.filter((s) => s.fields.callId === facts[0]!.callId || s.fields.parentId === facts[0]!.callId);
    expect(conf).to.have.length(5);
    expect(conf.filter((s) => s.fields.kind === 'conference-leg')).to.have.length(4);
    expect(new Set(conf.map((s) => s.stream)).size).to.equal(1);
    expect(conf.every((s) => s.fields.relayNode === 'relay-eu-1' && s.fields.mediaPath === 'relay')).to.equal(true);
  });

  it('holds no phone number, name, user id or IP address in any field of any shard', async () => {
    const stored = await readAllRecords(client, SHARDS);
    expect(stored.length).to.be.greaterThan(10);
    const findings = personalDataFindings(stored, {
      phones: users.map((u) => u.phone),
      names: users.flatMap((u) => (u.displayName ?? '').split(' ')),
      userIds: users.map((u) => u.userId),
    });
    expect(findings).to.deep.equal([]);
  });

  it('refuses a fact that would put personal data in a record, without disturbing the emitter', async () => {
    const [a, b] = users;
    const bad = oneToOneFact(a!.userId, b!.userId, DISPOSITION_CASES[0]!, { callId: a!.userId });
    const before = (await readAllRecords(client, SHARDS)).length;
    expect(() => hub.ctx.events.emit('call:ended', bad)).to.not.throw();
    await cdrOf(hub.ctx).flush();
    // In strict (test) mode the write itself rejects.
    let refused: unknown;
    await cdrOf(hub.ctx).writer.write(bad).catch((e) => { refused = e; });
    expect((refused as Error)?.name).to.equal('CdrRefusedError');
    const after = await readAllRecords(client, SHARDS);
    expect(after).to.have.length(before);
    expect(after.some((s) => s.fields.callId === a!.userId)).to.equal(false);
  });

  it('adds a record once even when it is written twice (event id marker, atomic with XADD)', async () => {
    const [a, b] = users;
    const service = cdrOf(hub.ctx);
    const { record } = recordFromFact(oneToOneFact(a!.userId, b!.userId, DISPOSITION_CASES[0]!), service.pseudonymizer);
    expect(await service.writer.writeRecord(record)).to.equal('written');
    expect(await service.writer.writeRecord(record)).to.equal('duplicate');
    const stored = await readAllRecords(client, SHARDS);
    expect(stored.filter((s) => s.fields.eventId === record.eventId)).to.have.length(1);
    const marker = keys.cdrSeen(shardOf(record, SHARDS), new Date(Number(record.endedAt)).toISOString().slice(0, 10));
    expect(await client.hget(marker, record.eventId)).to.be.a('string');
    expect(await client.pttl(marker)).to.be.greaterThan(0);
  });

  it('flushes pending writes when the hub closes', async () => {
    const other = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS) });
    const before = (await readAllRecords(client, SHARDS)).length;
    const facts = Array.from({ length: 50 }, (_, i) => oneToOneFact('uCloseFlush001', 'uCloseFlush002', DISPOSITION_CASES[i % 6]!));
    for (const fact of facts) other.ctx.events.emit('call:ended', fact);
    await other.close();
    await other.close();
    const stored = await readAllRecords(client, SHARDS);
    expect(stored).to.have.length(before + 50);
    const ids = new Set(stored.map((s) => s.fields.callId));
    expect(facts.every((f) => ids.has(f.callId))).to.equal(true);
  });

  it('reports readiness with the spool state', async () => {
    const res = await fetch(`${hub.url}/healthz`);
    const body = (await res.json()) as { checks: Record<string, { ok: boolean }> };
    expect(body.checks.cdr?.ok).to.equal(true);
  });
});

describe('CDR retention', () => {
  let redis: TestRedis;
  let hub: Hub;
  let client: Redis;

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url, { CDR_SHARDS: '2', CDR_RETENTION_DAYS: '30', CDR_AUDIT_RETENTION_DAYS: '365' });
    client = redis.client();
  });
  after(async () => {
    client?.disconnect();
    await hub?.close();
    await redis?.stop();
  });

  it('trims entries older than the retention from every shard, dead letters and audit, and keeps newer ones', async () => {
    const day = 86_400_000;
    const now = Date.now();
    const old = (ageDays: number, seq: number) => `${now - ageDays * day}-${seq}`;
    const streams = [keys.cdrShard(0), keys.cdrShard(1), keys.cdrDead()];
    for (const stream of streams) {
      await client.xadd(stream, old(45, 0), 'eventId', 'too-old');
      await client.xadd(stream, old(31, 0), 'eventId', 'just-too-old');
      await client.xadd(stream, old(29, 0), 'eventId', 'kept');
    }
    await client.xadd(keys.cdrAudit(), old(400, 0), 'lookupId', 'audit-too-old');
    await client.xadd(keys.cdrAudit(), old(45, 0), 'lookupId', 'audit-kept');

    // And a fresh record through the hub.
    const fact = oneToOneFact('uRetentionA0001', 'uRetentionB0002', DISPOSITION_CASES[0]!);
    hub.ctx.events.emit('call:ended', fact);
    await cdrOf(hub.ctx).flush();

    const removed = await cdrOf(hub.ctx).trimmer.trimNow();
    expect(removed).to.equal(7);
    for (const stream of streams) {
      const left = (await client.xrange(stream, '-', '+')).map(([, f]) => f[f.indexOf('eventId') + 1]);
      expect(left, stream).to.include('kept');
      expect(left, stream).to.not.include('too-old');
      expect(left, stream).to.not.include('just-too-old');
    }
    const audit = (await client.xrange(keys.cdrAudit(), '-', '+')).map(([, f]) => f[1]);
    expect(audit).to.deep.equal(['audit-kept']);
    const stored = await readAllRecords(client, 2);
    expect(stored.some((s) => s.fields.callId === fact.callId)).to.equal(true);
  });
});

