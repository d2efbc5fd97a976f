import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { decodeCdr, type CdrRecord } from '../../shared/cdr.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import { connectUser, createUser, type TestUser } from '../support/users.js';
import { Inbox, candidate, fakeSdp, ok } from '../support/calls.js';
import { personalDataFindings, readAllRecords, type StoredRecord } from '../support/cdr.js';

const SHARDS = 4;

interface Device { user: TestUser; socket: ClientSocket; inbox: Inbox }

/**
 * Call records produced by real 1:1 calls: sockets sign in, invite, ring,
 * answer, signal (SDP and ICE candidates carrying IP addresses), report
 * quality and hang up; the calls subsystem emits the facts and the CDR
 * writer stores them. Every field of every record is then scanned.
 */
describe('CDR from real call flows', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let hub: Hub;
  let client: Redis;
  const users: TestUser[] = [];
  const sockets: ClientSocket[] = [];
  const calls = new Map<string, string>(); // disposition -> call id

  async function device(name: string): Promise<Device> {
    const user = await createUser(hub, { displayName: name });
    users.push(user);
    const socket = await connectUser(hub, user);
    sockets.push(socket);
    return { user, socket, inbox: new Inbox(socket) };
  }
  const invite = (from: Device, to: Device, extra: Record<string, unknown> = {}) =>
    ok<{ callId: string; state: string; endReason?: string }>(from.socket, 'call:invite', { to: { userId: to.user.userId }, sdp: fakeSdp(), ...extra });

  async function recordOf(callId: string): Promise<{ entry: StoredRecord; record: CdrRecord }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const entry = (await readAllRecords(client, SHARDS)).find((s) => s.fields.callId === callId);
      if (entry) return { entry, record: decodeCdr(entry.fields) };
      if (Date.now() > deadline) throw new Error(`no record for ${callId}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url, { CDR_SHARDS: String(SHARDS), CALL_FINAL_REPORT_S: '0', CALL_RING_TIMEOUT_S: '1' });
    client = redis.client();
  });
  after(async () => {
    for (const s of sockets) s.close();
    client?.disconnect();
    await hub?.close();
    await redis?.stop();
  });

  it('answered: times, billsec, media path, client platform and quality per party', async () => {
    const a = await device('Alice Wexford');
    const b = await device('Bob Quimby');
    const { callId } = await invite(a, b, { client: { platform: 'ios', appVersion: '3.1.0' } });
    await b.inbox.next('call:incoming', callId);
    await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(7) });
    await ok(b.socket, 'call:accept', { callId, sdp: fakeSdp(), client: { platform: 'android', appVersion: '3.0.2' } });
    await a.inbox.next('call:accepted', callId);
    await ok(b.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(8) });
    await ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'srflx' } });
    await ok(b.socket, 'call:report', { callId, event: 'connected', path: { local: 'srflx', remote: 'host' } });
    await ok(a.socket, 'call:report', { callId, event: 'quality', codec: 'opus', rttMs: 42, jitterMs: 3.5, loss: 0.01 });
    await ok(b.socket, 'call:report', { callId, event: 'quality', codec: 'opus', rttMs: 40 });
    await ok(a.socket, 'call:hangup', { callId });
    calls.set('ANSWERED', callId);

    const { record } = await recordOf(callId);
    expect(record).to.include({ kind: 'p2p', disposition: 'ANSWERED', endReason: 'completed', cause: 'NORMAL_CLEARING', causeCode: '16', hangupBy: 'caller', mediaPath: 'direct', participantCount: '2' });
    expect(Number(record.answeredAt)).to.be.at.least(Number(record.createdAt));
    expect(Number(record.endedAt)).to.be.at.least(Number(record.answeredAt));
    expect(record.billsec).to.equal(String(Math.floor((Number(record.endedAt) - Number(record.answeredAt!)) / 1000)));
    expect(record.setupMs).to.equal(String(Number(record.answeredAt) - Number(record.createdAt)));
    expect(record).to.include({ 'caller.platform': 'ios', 'caller.appVersion': '3.1.0', 'caller.codec': 'opus', 'caller.rttMs': '42', 'caller.lossPct': '1', 'caller.ice': 'host' });
    expect(record).to.include({ 'callee.platform': 'android', 'callee.appVersion': '3.0.2', 'callee.rttMs': '40', 'callee.ice': 'srflx' });
  });

  it('declined', async () => {
    const a = await device('Alicia Thistlewood');
    const b = await device('Roberto Okonkwo');
    const { callId } = await invite(a, b);
    await b.inbox.next('call:incoming', callId);
    await ok(b.socket, 'call:reject', { callId });
    calls.set('DECLINED', callId);
    const { record } = await recordOf(callId);
    expect(record).to.include({ disposition: 'DECLINED', endReason: 'declined', cause: 'CALL_REJECTED', causeCode: '21', hangupBy: 'callee', billsec: '0', mediaPath: 'none' });
    expect(record.answeredAt).to.equal(undefined);
  });

  it('busy', async () => {
    const a = await device('Alison Lindqvist');
    const b = await device('Bobby Marchetti');
    const c = await device('Carol Featherstone');
    const first = await invite(c, b);
    await b.inbox.next('call:incoming', first.callId);
    await ok(b.socket, 'call:accept', { callId: first.callId, sdp: fakeSdp() });
    await ok(c.socket, 'call:report', { callId: first.callId, event: 'connected', path: { local: 'relay', remote: 'relay' } });
    const busy = await invite(a, b);
    expect(busy).to.include({ state: 'ended', endReason: 'busy' });
    calls.set('BUSY', busy.callId);
    await ok(c.socket, 'call:hangup', { callId: first.callId });
    const { record } = await recordOf(busy.callId);
    expect(record).to.include({ disposition: 'BUSY', endReason: 'busy', cause: 'USER_BUSY', causeCode: '17', billsec: '0' });
    const other = await recordOf(first.callId);
    expect(other.record).to.include({ disposition: 'ANSWERED', hangupBy: 'caller', 'caller.ice': 'relay' });
  });

  it('no answer (ring timeout)', async () => {
    const a = await device('Alix Brannigan');
    const b = await device('Bo Szymanski');
    const { callId } = await invite(a, b);
    await b.inbox.next('call:incoming', callId);
    await a.inbox.next('call:ended', callId, 10_000);
    calls.set('NO_ANSWER', callId);
    const { record } = await recordOf(callId);
    expect(record).to.include({ disposition: 'NO_ANSWER', endReason: 'no_answer', cause: 'NO_ANSWER', causeCode: '19', hangupBy: 'system', billsec: '0' });
    expect(Number(record.endedAt) - Number(record.createdAt)).to.be.at.least(900);
  });

  it('cancelled', async () => {
    const a = await device('Ali Henningsen');
    const b = await device('Robin Castellanos');
    const { callId } = await invite(a, b);
    await b.inbox.next('call:incoming', callId);
    await ok(a.socket, 'call:cancel', { callId });
    calls.set('CANCELLED', callId);
    const { record } = await recordOf(callId);
    expect(record).to.include({ disposition: 'CANCELLED', endReason: 'cancelled', cause: 'ORIGINATOR_CANCEL', hangupBy: 'caller', billsec: '0' });
  });

  it('one record per call, and no phone number, name, user id or IP address in any field of any shard', async () => {
    const stored = await readAllRecords(client, SHARDS);
    expect(stored).to.have.length(6); // five calls above plus the call that made Bob busy
    expect(new Set(stored.map((s) => s.fields.callId)).size).to.equal(6);
    for (const callId of calls.values()) expect(stored.filter((s) => s.fields.callId === callId)).to.have.length(1);
    const findings = personalDataFindings(stored, {
      phones: users.map((u) => u.phone),
      names: users.flatMap((u) => (u.displayName ?? '').split(' ')),
      userIds: users.map((u) => u.userId),
    });
    expect(findings).to.deep.equal([]);
    // Nor SDP or candidates, which did travel through the hub in these calls.
    const text = JSON.stringify(stored);
    for (const needle of ['v=0', 'IN IP4', 'candidate', 'typ host', '192.0.2.']) expect(text).to.not.include(needle);
  });
});
