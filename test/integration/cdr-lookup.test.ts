import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { cdrOf } from '../../server/cdr/registerCdr.js';
import { SupportLookup } from '../../server/cdr/SupportLookup.js';
import { keys } from '../../server/keys.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { createUser, type TestUser } from '../support/users.js';
import { runScript } from '../support/processes.js';
import { DISPOSITION_CASES, oneToOneFact, waitForRecords } from '../support/cdr.js';

const SHARDS = 3;
const secret = () => randomBytes(24).toString('hex');

function auditFields(entry: [string, string[]]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < entry[1].length; i += 2) out[entry[1][i]!] = entry[1][i + 1]!;
  return out;
}

describe('CDR support lookup, audit and key rotation', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let client: Redis;
  let hubV2: Hub;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  const identity = `i1:${secret()}`;
  const bill1 = `1:${secret()}`;
  const anon1 = `1:${secret()}`;
  const bill2 = `${bill1},2:${secret()}`;
  const anon2 = `${anon1},2:${secret()}`;
  const callIds: { v1: string[]; v2: string[]; others: string[] } = { v1: [], v2: [], others: [] };

  before(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    // Records under key version 1 ...
    const hubV1 = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS), IDENTITY_HMAC_KEYS: identity, CDR_PSEUDONYM_KEYS_BILLING: bill1, CDR_PSEUDONYM_KEYS_ANALYTICS: anon1 });
    try {
      alice = await createUser(hubV1, { displayName: 'Alice Lookup' });
      bob = await createUser(hubV1, { displayName: 'Bob Lookup' });
      carol = await createUser(hubV1, { displayName: 'Carol Lookup' });
      const facts = [oneToOneFact(alice.userId, bob.userId, DISPOSITION_CASES[0]!), oneToOneFact(bob.userId, alice.userId, DISPOSITION_CASES[2]!)];
      callIds.v1.push(...facts.map((f) => f.callId));
      const other = oneToOneFact(bob.userId, carol.userId, DISPOSITION_CASES[0]!);
      callIds.others.push(other.callId);
      for (const f of [...facts, other]) hubV1.ctx.events.emit('call:ended', f);
      await cdrOf(hubV1.ctx).flush();
    } finally {
      await hubV1.close();
    }
    // ... then the keys rotate: version 2 is current, version 1 stays for lookups.
    hubV2 = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS), IDENTITY_HMAC_KEYS: identity, CDR_PSEUDONYM_KEYS_BILLING: bill2, CDR_PSEUDONYM_KEYS_ANALYTICS: anon2 });
    const facts = [oneToOneFact(carol.userId, alice.userId, DISPOSITION_CASES[1]!)];
    callIds.v2.push(facts[0]!.callId);
    const other = oneToOneFact(carol.userId, bob.userId, DISPOSITION_CASES[0]!);
    callIds.others.push(other.callId);
    for (const f of [...facts, other]) hubV2.ctx.events.emit('call:ended', f);
    await cdrOf(hubV2.ctx).flush();
    expect(await waitForRecords(client, SHARDS, 5)).to.have.length(5);
  });
  after(async () => {
    client?.disconnect();
    await hubV2?.close();
    await redis?.stop();
  });

  const lookup = () => new SupportLookup({ redis: hubV2.ctx.redis, accounts: hubV2.ctx.accounts, pseudonymizer: cdrOf(hubV2.ctx).pseudonymizer, shards: SHARDS });

  it('finds every record of a user under every key version, and only theirs', async () => {
    const result = await lookup().lookup({ phone: alice.phone, operator: 'alice.ops', reason: 'dispute #123' });
    expect(result.accountFound).to.equal(true);
    const found = result.matches.map((m) => m.record.callId).sort();
    expect(found).to.deep.equal([...callIds.v1, ...callIds.v2].sort());
    expect(result.matches.map((m) => m.record.billKeyVersion).sort()).to.deep.equal(['1', '1', '2']);
    const roles = new Map(result.matches.map((m) => [m.record.callId, m.role]));
    expect(roles.get(callIds.v1[0]!)).to.equal('caller');
    expect(roles.get(callIds.v1[1]!)).to.equal('callee');
    expect(roles.get(callIds.v2[0]!)).to.equal('callee');
  });

  it('writes an audit entry for each lookup: who, why, when, how many; never the number', async () => {
    const before = await client.xlen(keys.cdrAudit());
    const result = await lookup().lookup({ phone: bob.phone, operator: 'bob.ops', reason: 'billing dispute #456' });
    const entries = await client.xrange(keys.cdrAudit(), '-', '+');
    expect(entries).to.have.length(before + 1);
    const last = entries.at(-1)!;
    expect(last[0]).to.equal(result.auditEntryId);
    const audit = auditFields(last);
    expect(audit).to.include({ lookupId: result.lookupId, operator: 'bob.ops', reason: 'billing dispute #456', accountFound: '1', records: String(result.matches.length), subjectKeyVersion: '2', keyVersionsTried: '1,2' });
    expect(result.matches).to.have.length(4);
    expect(Number(audit.at)).to.be.closeTo(Date.now(), 60_000);
    expect(audit.subject).to.equal(cdrOf(hubV2.ctx).pseudonymizer.pseudonymize(bob.userId).bill);
    const text = JSON.stringify(entries);
    for (const u of [alice, bob, carol]) {
      expect(text).to.not.include(u.phone.slice(1));
      expect(text).to.not.include(u.userId);
    }
  });

  it('audits a lookup of a number without an account, and refuses a reason that holds a number', async () => {
    const before = await client.xlen(keys.cdrAudit());
    const none = await lookup().lookup({ phone: '+12025550199', operator: 'alice.ops', reason: 'ticket 77' });
    expect(none).to.include({ accountFound: false });
    expect(none.matches).to.deep.equal([]);
    const entry = auditFields((await client.xrange(keys.cdrAudit(), '-', '+')).at(-1)!);
    expect(entry).to.include({ accountFound: '0', records: '0', subject: 'none' });
    for (const reason of [`call from ${alice.phone}`, 'caller 07700 900123', 'from 10.0.0.1']) {
      let err: unknown;
      await lookup().lookup({ phone: alice.phone, operator: 'alice.ops', reason }).catch((e) => { err = e; });
      expect(err, reason).to.be.instanceOf(TypeError);
    }
    let bad: unknown;
    await lookup().lookup({ phone: '07700900123', operator: 'alice.ops', reason: 'ticket 1' }).catch((e) => { bad = e; });
    expect(bad).to.be.instanceOf(TypeError);
    expect(await client.xlen(keys.cdrAudit())).to.equal(before + 1);
  });

  it('works as the operator command scripts/cdr-lookup.ts', async () => {
    const env = { REDIS_URL: redis.url, CDR_SHARDS: String(SHARDS), IDENTITY_HMAC_KEYS: identity, CDR_PSEUDONYM_KEYS_BILLING: bill2, CDR_PSEUDONYM_KEYS_ANALYTICS: anon2, LOG_LEVEL: 'silent' };
    const before = await client.xlen(keys.cdrAudit());
    const run = await runScript('scripts/cdr-lookup.ts', ['--phone', alice.phone, '--operator', 'alice', '--reason', 'dispute #123'], env);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/audited as \d+-\d+ in cdr:audit/);
    expect(run.stdout).to.contain('3 record(s)');
    for (const id of [...callIds.v1, ...callIds.v2]) expect(run.stdout).to.contain(id);
    expect(run.stdout).to.not.contain(alice.phone);
    expect(await client.xlen(keys.cdrAudit())).to.equal(before + 1);
    const usage = await runScript('scripts/cdr-lookup.ts', ['--phone', alice.phone], env);
    expect(usage.code).to.equal(64);
    expect(await client.xlen(keys.cdrAudit())).to.equal(before + 1);
  });
});
