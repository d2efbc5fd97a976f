import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { RelayFallbackCall } from '../../server/calls/CallRelayFallback.js';
import type { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import { addDevice, createUser, type TestUser } from '../support/users.js';
import { FactLog, candidate, connectDevice, errorCode, fakeSdp, ok, sleep, type Device } from '../support/calls.js';
import { callsFixture, type CallsFixture } from '../support/fixtures.js';

/** Ring, connect, reconnect-grace and final-report timers, shortened to seconds. */
describe('1:1 call timers', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let hub: Hub;
  let facts: FactLog;
  let fixture: CallsFixture | undefined;
  const open: ClientSocket[] = [];

  before(async () => {
    fixture = await callsFixture({
      CALL_RING_TIMEOUT_S: '1',
      CALL_CONNECT_TIMEOUT_S: '1',
      CALL_RECONNECT_GRACE_S: '2',
      CALL_FINAL_REPORT_S: '1',
    });
    ({ redis, hub, facts } = fixture);
  });
  after(() => fixture?.stop());
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    hub.ctx.calls?.setRelayFallback(undefined);
  });

  const connect = (user: TestUser, on: Hub = hub): Promise<Device> => connectDevice(on, user, open);
  const newUser = async (on: Hub = hub) => connect(await createUser(on), on);

  /** a calls b, b answers; optionally both report media connected at once (the connect timeout is 1 s). */
  async function answeredCall(a: Device, b: Device, connected: boolean): Promise<string> {
    const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId }, sdp: fakeSdp() });
    await b.inbox.next('call:incoming', callId);
    await ok(b.socket, 'call:accept', { callId, sdp: fakeSdp() });
    if (connected) {
      await Promise.all([
        ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } }),
        ok(b.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } }),
      ]);
    }
    await a.inbox.next('call:accepted', callId);
    return callId;
  }

  it('no answer: the call ends for the caller and every ringing device after the ring timeout', async () => {
    const a = await newUser();
    const b1 = await newUser();
    const b2 = await connect(await addDevice(hub, b1.user));
    const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b1.user.userId } });
    for (const d of [a, b1, b2]) expect((await d.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('no_answer');
    const fact = await facts.next(callId);
    expect(fact).to.include({ disposition: 'NO_ANSWER', endReason: 'no_answer', hangupBy: 'system', mediaPath: 'none' });
    expect(fact.ringingAt).to.be.a('number');
    expect(await errorCode(b1.socket, 'call:accept', { callId })).to.equal('CALL_INVALID_STATE');
  });

  it('an offline callee is still called until the ring timeout', async () => {
    const a = await newUser();
    const offline = await createUser(hub);
    const inv = await ok<{ callId: string; state: string }>(a.socket, 'call:invite', { to: { userId: offline.userId } });
    expect(inv.state).to.equal('inviting');
    expect((await a.inbox.next<{ reason: string }>('call:ended', inv.callId)).reason).to.equal('no_answer');
    const fact = await facts.next(inv.callId);
    expect(fact).to.include({ disposition: 'NO_ANSWER' });
    expect(fact.ringingAt).to.equal(undefined);
  });

  it('an answered call whose media never connects ends failed when there is no relay fallback', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, false);
    expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('failed');
    expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('failed');
    expect(await facts.next(callId)).to.include({ disposition: 'FAILED', endReason: 'failed', hangupBy: 'system', mediaPath: 'none' });
  });

  it('the connect timeout hands the call to the relay fallback once; media over the relay keeps it', async () => {
    const moved: RelayFallbackCall[] = [];
    hub.ctx.calls!.setRelayFallback({ moveToRelay: async (call) => { moved.push(call); return { relayNode: 'relay-a' }; } });
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, false);
    const deadline = Date.now() + 5000;
    while (moved.length === 0) {
      if (Date.now() > deadline) throw new Error('fallback not called');
      await sleep(20);
    }
    await ok(b.socket, 'call:report', { callId, event: 'connected', path: { local: 'relay', remote: 'host' } });
    await sleep(1500); // past the second connect deadline
    expect(b.inbox.all('call:ended', callId)).to.deep.equal([]);
    expect(moved).to.have.length(1);
    await ok(a.socket, 'call:hangup', { callId });
    expect(await facts.next(callId)).to.include({ kind: 'relayed', mediaPath: 'relay', relayNode: 'relay-a', disposition: 'ANSWERED' });
  });

  it('a call moved to the relay that still does not connect ends failed', async () => {
    let calls = 0;
    hub.ctx.calls!.setRelayFallback({ moveToRelay: async () => { calls++; return { relayNode: 'relay-b' }; } });
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, false);
    expect((await a.inbox.next<{ reason: string }>('call:ended', callId, 8000)).reason).to.equal('failed');
    expect(calls).to.equal(1);
    expect(await facts.next(callId)).to.include({ kind: 'relayed', disposition: 'FAILED', mediaPath: 'none' });
  });

  it('a party that reconnects within the grace period resumes the call', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, true);
    a.socket.close();
    expect((await b.inbox.next<{ state: string }>('call:peer-connection', callId)).state).to.equal('lost');
    expect((await ok<{ call: { peerConnection: string } }>(b.socket, 'call:state', { callId })).call.peerConnection).to.equal('lost');

    const back = await connect(a.user);
    const resumed = await back.inbox.next<{ call: { callId: string; state: string; role: string; thisDevice: boolean } }>('call:resumed');
    expect(resumed.call).to.include({ callId, state: 'connected', role: 'caller', thisDevice: true });
    const peerStates = async () => b.inbox.all('call:peer-connection', callId).map((p) => p.state);
    const deadline = Date.now() + 3000;
    while (!(await peerStates()).includes('resumed')) {
      if (Date.now() > deadline) throw new Error('peer not told of the resume');
      await sleep(10);
    }
    await ok(back.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(5) });
    expect((await b.inbox.next<{ type: string }>('call:signal', callId)).type).to.equal('candidate');
    await sleep(2500); // longer than the grace period
    expect(b.inbox.all('call:ended', callId)).to.deep.equal([]);
    await ok(back.socket, 'call:hangup', { callId });
    expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('completed');
  });

  it('a party that stays away past the grace period ends the call as party_lost', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, true);
    b.socket.close();
    expect((await a.inbox.next<{ state: string }>('call:peer-connection', callId)).state).to.equal('lost');
    expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('party_lost');
    expect(await facts.next(callId)).to.include({ disposition: 'ANSWERED', endReason: 'party_lost', hangupBy: 'system', mediaPath: 'direct' });
    const late = await connect(b.user);
    expect((await ok<{ calls: unknown[] }>(late.socket, 'call:list', {})).calls).to.deep.equal([]);
    await sleep(100);
    expect(late.inbox.all('call:resumed')).to.deep.equal([]);
  });

  it('takes final quality reports after the end, then closes the record', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b, true);
    await ok(a.socket, 'call:report', { callId, event: 'quality', codec: 'opus', rttMs: 80, jitterMs: 4, loss: 0.02 });
    await ok(a.socket, 'call:hangup', { callId });
    await b.inbox.next('call:ended', callId);
    await ok(b.socket, 'call:report', { callId, event: 'quality', codec: 'VP8', rttMs: 81, loss: 0 });
    const fact = await facts.next(callId);
    expect(fact.parties.map((p) => p.quality)).to.deep.equal([
      { codec: 'opus', rttMs: 80, jitterMs: 4, loss: 0.02 },
      { codec: 'VP8', rttMs: 81, loss: 0 },
    ]);
    expect(await errorCode(b.socket, 'call:report', { callId, event: 'quality', rttMs: 1 })).to.equal('CALL_INVALID_STATE');
  });

  it('a hub shutting down (rolling restart): its calls survive a reconnect to another hub', async () => {
    const other = await startTestHub(redis.url, {
      JWT_KEYS: [...hub.ctx.config.JWT_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
      IDENTITY_HMAC_KEYS: [...hub.ctx.config.IDENTITY_HMAC_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
      CALL_RECONNECT_GRACE_S: '5',
    });
    try {
      const aUser = await createUser(hub);
      const a = await connect(aUser, other);
      const b = await newUser();
      const callId = await answeredCall(a, b, true);
      await other.close();
      expect((await b.inbox.next<{ state: string }>('call:peer-connection', callId)).state).to.equal('lost');
      const back = await connect(aUser);
      expect((await back.inbox.next<{ call: { callId: string } }>('call:resumed')).call.callId).to.equal(callId);
      await ok(back.socket, 'call:hangup', { callId });
      expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('completed');
    } finally {
      await other.close();
    }
  });

  it('with two hubs scanning one Redis, each timer acts once and each call has one fact', async () => {
    const other = await startTestHub(redis.url, {
      JWT_KEYS: [...hub.ctx.config.JWT_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
      IDENTITY_HMAC_KEYS: [...hub.ctx.config.IDENTITY_HMAC_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
      CALL_RING_TIMEOUT_S: '1',
      CALL_FINAL_REPORT_S: '0',
    });
    const otherFacts = new FactLog(other);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const a = await newUser(i % 2 ? hub : other);
        const b = await newUser(i % 2 ? other : hub);
        ids.push((await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId } })).callId);
      }
      const deadline = Date.now() + 8000;
      while (ids.some((id) => facts.of(id).length + otherFacts.of(id).length === 0)) {
        if (Date.now() > deadline) throw new Error('not every call timed out');
        await sleep(50);
      }
      await sleep(1500);
      for (const id of ids) expect(facts.of(id).length + otherFacts.of(id).length, id).to.equal(1);
    } finally {
      await other.close();
    }
  });
});
