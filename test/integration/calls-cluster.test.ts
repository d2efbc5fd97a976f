import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { TestRedis } from '../support/redis.js';
import { connectSocket, startTestHub, type ClientSocket } from '../support/hub.js';
import { testHubEnv } from '../support/config.js';
import { spawnTracked, stopProcess, waitForLine } from '../support/processes.js';
import { addDevice, createUser, type TestUser } from '../support/users.js';
import { FactLog, Inbox, ack, candidate, fakeSdp, ok, sleep } from '../support/calls.js';

interface Device { user: TestUser; socket: ClientSocket; inbox: Inbox }

/**
 * Two hub PROCESSES against one Redis: a spawned `server/main.ts` and an
 * in-process hub sharing its secrets. Calls cross between them through
 * Redis (state, timers) and the Socket.IO Redis adapter (notices).
 */
describe('1:1 calls across two hub processes', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let child: ChildProcess;
  let childUrl: string;
  let childLog = '';
  let hub: Hub;
  let facts: FactLog;
  const open: ClientSocket[] = [];

  before(async () => {
    redis = await TestRedis.start();
    const env = testHubEnv(redis.url, { CALL_RING_TIMEOUT_S: '2', CALL_FINAL_REPORT_S: '0', LOG_LEVEL: 'info', HUB_ID: 'hub-process' });
    child = spawnTracked(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: { ...env, PATH: process.env.PATH ?? '' },
    });
    child.stdout!.on('data', (chunk: Buffer) => { childLog += chunk.toString(); });
    childUrl = (await waitForLine(child, /HUB_READY (\S+)/, 30_000))[1]!;
    hub = await startTestHub(redis.url, {
      JWT_KEYS: env.JWT_KEYS!, IDENTITY_HMAC_KEYS: env.IDENTITY_HMAC_KEYS!,
      CALL_RING_TIMEOUT_S: '2', CALL_FINAL_REPORT_S: '0', HUB_ID: 'hub-inproc',
    });
    facts = new FactLog(hub);
  });
  after(async () => {
    for (const s of open.splice(0)) s.close();
    if (child) await stopProcess(child);
    await hub?.close();
    await redis?.stop();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  async function on(url: string, user: TestUser): Promise<Device> {
    const socket = await connectSocket(url, user.accessToken);
    open.push(socket);
    return { user, socket, inbox: new Inbox(socket) };
  }
  /** Facts of a call emitted by either process (the spawned one logs each fact it emits). */
  function factCount(callId: string): number {
    const inChild = childLog.split('\n').filter((l) => l.includes('"call-ended fact"') && l.includes(`"callId":"${callId}"`)).length;
    return facts.of(callId).length + inChild;
  }
  async function oneFact(callId: string): Promise<void> {
    const deadline = Date.now() + 8000;
    while (factCount(callId) === 0) {
      if (Date.now() > deadline) throw new Error(`no fact for ${callId}`);
      await sleep(20);
    }
    await sleep(1200); // a full timer scan period: a duplicate would show up now
    expect(factCount(callId)).to.equal(1);
  }

  it('a caller on one process calls a callee on the other by phone number, end to end', async () => {
    const a = await on(childUrl, await createUser(hub, { displayName: 'Ann' }));
    const b = await on(hub.url, await createUser(hub));
    const offer = fakeSdp();
    const inv = await ok<{ callId: string; state: string }>(a.socket, 'call:invite', { to: { phone: b.user.phone }, sdp: offer });
    expect(inv.state).to.equal('ringing');
    const callId = inv.callId;
    const incoming = await b.inbox.next<{ caller: { userId: string; phone: string; displayName: string }; sdp: string }>('call:incoming', callId);
    expect(incoming.caller).to.deep.equal({ userId: a.user.userId, phone: a.user.phone, displayName: 'Ann' });
    expect(incoming.sdp).to.equal(offer);
    await a.inbox.next('call:ringing', callId);
    await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(1) });
    expect((await b.inbox.next<{ type: string }>('call:signal', callId)).type).to.equal('candidate');

    const answer = fakeSdp(300);
    await ok(b.socket, 'call:accept', { callId, sdp: answer });
    expect((await a.inbox.next<{ sdp: string }>('call:accepted', callId)).sdp).to.equal(answer);
    await ok(b.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(2) });
    await ok(a.socket, 'call:signal', { callId, type: 'end-of-candidates' });
    expect((await a.inbox.next<{ candidate: unknown }>('call:signal', callId)).candidate).to.deep.equal(candidate(2));
    await ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'srflx', remote: 'srflx' } });
    await ok(a.socket, 'call:media-state', { callId, audio: false, video: false });
    expect(await b.inbox.next('call:media-state', callId)).to.deep.equal({ callId, audio: false, video: false });

    // Hung up on the spawned process: that process wins the end and emits the fact.
    await ok(a.socket, 'call:hangup', { callId });
    expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('completed');
    await oneFact(callId);
  });

  it('two devices on different processes accept at once: exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const a = await on(hub.url, await createUser(hub));
      const bUser = await createUser(hub);
      const b1 = await on(childUrl, bUser);
      const b2 = await on(hub.url, await addDevice(hub, bUser));
      const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: bUser.userId } });
      await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
      const results = await Promise.all([ack(b1.socket, 'call:accept', { callId }), ack(b2.socket, 'call:accept', { callId })]);
      expect(results.filter((r) => r.ok)).to.have.length(1);
      const loser = results[0]!.ok ? b2 : b1;
      expect((await loser.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('answered_elsewhere');
      await a.inbox.next('call:accepted', callId);
      await ok(a.socket, 'call:hangup', { callId });
      await oneFact(callId);
      for (const s of open.splice(0)) s.close();
    }
  });

  it('glare across processes ends in one call', async () => {
    const a = await on(childUrl, await createUser(hub));
    const b = await on(hub.url, await createUser(hub));
    const [ia, ib] = await Promise.all([
      ok<{ callId: string; glare: boolean }>(a.socket, 'call:invite', { to: { userId: b.user.userId } }),
      ok<{ callId: string; glare: boolean }>(b.socket, 'call:invite', { to: { userId: a.user.userId } }),
    ]);
    expect(ia.callId).to.equal(ib.callId);
    expect([ia.glare, ib.glare].sort()).to.deep.equal([false, true]);
    await ok(b.socket, 'call:hangup', { callId: ia.callId });
    await oneFact(ia.callId);
  });

  it('a party that drops from one process and reconnects to the other resumes the call', async () => {
    const aUser = await createUser(hub);
    const a = await on(childUrl, aUser);
    const b = await on(hub.url, await createUser(hub));
    const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
    await b.inbox.next('call:incoming', callId);
    await ok(b.socket, 'call:accept', { callId });
    await a.inbox.next('call:accepted', callId);
    a.socket.close();
    expect((await b.inbox.next<{ state: string }>('call:peer-connection', callId)).state).to.equal('lost');
    const back = await on(hub.url, aUser);
    expect((await back.inbox.next<{ call: { callId: string; thisDevice: boolean } }>('call:resumed')).call).to.include({ callId, thisDevice: true });
    const deadline = Date.now() + 3000;
    while (!b.inbox.all('call:peer-connection', callId).some((p) => p.state === 'resumed')) {
      if (Date.now() > deadline) throw new Error('peer not told of the resume');
      await sleep(10);
    }
    await ok(b.socket, 'call:signal', { callId, type: 'offer', sdp: fakeSdp() });
    expect((await back.inbox.next<{ type: string }>('call:signal', callId)).type).to.equal('offer');
    await ok(back.socket, 'call:hangup', { callId });
    await oneFact(callId);
  });

  // Last: it kills the spawned process.
  it('the ring timeout still fires when the process that created the call dies', async () => {
    const a = await on(childUrl, await createUser(hub));
    const b = await on(hub.url, await createUser(hub));
    const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
    await b.inbox.next('call:incoming', callId);
    child.kill('SIGKILL');
    expect((await b.inbox.next<{ reason: string }>('call:ended', callId, 10_000)).reason).to.equal('no_answer');
    const fact = await facts.next(callId);
    expect(fact).to.include({ disposition: 'NO_ANSWER', hangupBy: 'system' });
    expect(facts.of(callId)).to.have.length(1);
  });
});
