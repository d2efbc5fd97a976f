import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { RelayFallbackCall } from '../../server/calls/CallRelayFallback.js';
import { SDP_MAX_LENGTH } from '../../shared/protocol/calls.js';
import { keys } from '../../server/keys.js';
import { keysMentioning } from '../support/redisScan.js';
import type { ClientSocket } from '../support/hub.js';
import { addDevice, createUser, type TestUser } from '../support/users.js';
import { ack, candidate, connectDevice, errorCode, fakeSdp, ok, sleep, type Device, type FactLog } from '../support/calls.js';
import { callsFixture, type CallsFixture } from '../support/fixtures.js';

const TURN_SECRET = 'turn-secret-for-tests-0123456789';

interface InviteAck {
  callId: string; role: string; state: string; glare: boolean; endReason?: string; sdp?: string;
  candidates?: unknown[]; peer: { userId: string; phone: string | null; displayName: string | null };
  iceServers: { urls: string[]; username?: string; credential?: string }[];
}
interface View { callId: string; role: string; state: string; thisDevice: boolean; peerConnection: string; peerMedia: unknown }

describe('1:1 calls', function () {
  this.timeout(20_000);
  let hub: Hub;
  let facts: FactLog;
  let fixture: CallsFixture | undefined;
  const open: ClientSocket[] = [];

  before(async () => {
    fixture = await callsFixture({
      CALL_FINAL_REPORT_S: '0',
      STUN_URLS: 'stun:stun.example.test:3478',
      TURN_URLS: 'turn:turn.example.test:3478?transport=udp,turns:turn.example.test:5349',
      TURN_SECRET,
      TURN_TTL_S: '300',
    });
    ({ hub, facts } = fixture);
  });
  after(() => fixture?.stop());
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
    hub.ctx.calls?.setRelayFallback(undefined);
  });

  const connect = (user: TestUser) => connectDevice(hub, user, open);
  async function newUser(displayName?: string): Promise<Device> {
    return connect(await createUser(hub, displayName ? { displayName } : {}));
  }
  async function otherDevice(d: Device): Promise<Device> {
    return connect(await addDevice(hub, d.user));
  }
  function invite(from: Device, to: Device, extra: Record<string, unknown> = {}): Promise<InviteAck & { ok: true }> {
    return ok<InviteAck>(from.socket, 'call:invite', { to: { userId: to.user.userId }, ...extra });
  }
  /** a calls b, b answers; returns the call id once the caller heard the answer. */
  async function answeredCall(a: Device, b: Device): Promise<string> {
    const { callId } = await invite(a, b, { sdp: fakeSdp() });
    await b.inbox.next('call:incoming', callId);
    await ok(b.socket, 'call:accept', { callId, sdp: fakeSdp() });
    await a.inbox.next('call:accepted', callId);
    return callId;
  }
  async function view(d: Device, callId: string): Promise<View> {
    return (await ok<{ call: View }>(d.socket, 'call:state', { callId })).call;
  }

  describe('answer and hangup', () => {
    it('rings with the caller\'s verified identity, connects on answer, and hangs up with one call-ended fact', async () => {
      const a = await newUser('Alice');
      const b = await newUser('Bob');
      const offer = fakeSdp(1200);
      const answer = fakeSdp(900);
      const inv = await invite(a, b, { sdp: offer, video: true, client: { platform: 'ios', appVersion: '1.4.2' } });
      expect(inv).to.include({ role: 'caller', state: 'ringing', glare: false });
      // Called by user id: the caller is not shown the callee's number (see calls-privacy.test.ts).
      expect(inv.peer).to.deep.equal({ userId: b.user.userId, phone: null, displayName: 'Bob' });
      expect(inv.iceServers.map((s) => s.urls[0])).to.deep.equal(['stun:stun.example.test:3478', 'turn:turn.example.test:3478?transport=udp']);

      const incoming = await b.inbox.next<{ caller: unknown; sdp: string; video: boolean; iceServers: { username?: string }[]; expiresAt: number }>('call:incoming', inv.callId);
      expect(incoming.caller).to.deep.equal({ userId: a.user.userId, phone: a.user.phone, displayName: 'Alice' });
      expect(incoming.sdp).to.equal(offer);
      expect(incoming.video).to.equal(true);
      expect(incoming.expiresAt).to.be.greaterThan(Date.now());
      expect(incoming.iceServers[1]?.username).to.match(/^\d+:[A-Za-z0-9_-]+$/);
      await a.inbox.next('call:ringing', inv.callId);

      const accepted = await ok<{ iceServers: unknown[] }>(b.socket, 'call:accept', { callId: inv.callId, sdp: answer, client: { platform: 'android', appVersion: '2.0.0' } });
      expect(accepted.iceServers).to.have.length(2);
      expect(await a.inbox.next('call:accepted', inv.callId)).to.deep.equal({ callId: inv.callId, sdp: answer });
      expect((await view(a, inv.callId)).state).to.equal('answered');

      await ok(a.socket, 'call:report', { callId: inv.callId, event: 'connected', path: { local: 'host', remote: 'srflx' } });
      await ok(b.socket, 'call:report', { callId: inv.callId, event: 'connected', path: { local: 'srflx', remote: 'host' } });
      expect((await view(b, inv.callId)).state).to.equal('connected');
      await ok(a.socket, 'call:report', { callId: inv.callId, event: 'quality', codec: 'opus', rttMs: 42, jitterMs: 3.5, loss: 0.01 });
      await ok(b.socket, 'call:report', { callId: inv.callId, event: 'quality', codec: 'opus', rttMs: 40 });

      await ok(a.socket, 'call:hangup', { callId: inv.callId });
      expect(await a.inbox.next('call:ended', inv.callId)).to.deep.equal({ callId: inv.callId, reason: 'completed' });
      expect(await b.inbox.next('call:ended', inv.callId)).to.deep.equal({ callId: inv.callId, reason: 'completed' });

      const fact = await facts.next(inv.callId);
      expect(fact).to.include({ kind: 'p2p', disposition: 'ANSWERED', endReason: 'completed', hangupBy: 'caller', mediaPath: 'direct', participantCount: 2 });
      expect(fact.ringingAt).to.be.a('number');
      expect(fact.answeredAt).to.be.at.least(fact.createdAt);
      expect(fact.connectedAt).to.be.at.least(fact.answeredAt!);
      expect(fact.endedAt).to.be.at.least(fact.connectedAt!);
      expect(fact.parties).to.deep.equal([
        { userId: a.user.userId, role: 'caller', platform: 'ios', appVersion: '1.4.2', iceType: 'host', quality: { codec: 'opus', rttMs: 42, jitterMs: 3.5, loss: 0.01 } },
        { userId: b.user.userId, role: 'callee', platform: 'android', appVersion: '2.0.0', iceType: 'srflx', quality: { codec: 'opus', rttMs: 40 } },
      ]);
      await sleep(100);
      expect(facts.of(inv.callId)).to.have.length(1);
      expect(a.inbox.all('call:ended', inv.callId)).to.have.length(1);
      // Both are free again.
      expect((await ok<{ calls: unknown[] }>(a.socket, 'call:list', {})).calls).to.deep.equal([]);
      expect((await ok<{ calls: unknown[] }>(b.socket, 'call:list', {})).calls).to.deep.equal([]);
    });

    it('calls a user by phone number, in international or the caller\'s national format', async () => {
      // Real, valid UK mobile numbers: the caller's region is read from the caller's own number.
      const suffix = () => String(100000 + Math.floor(Math.random() * 899999));
      const a = await connect(await createUser(hub, { phone: `+447400${suffix()}` }));
      const b = await connect(await createUser(hub, { phone: `+447500${suffix()}` }));
      const national = `0${b.user.phone.slice(3, 7)} ${b.user.phone.slice(7)}`; // +44 7500 xxxxxx -> 07500 xxxxxx
      const inv = await ok<InviteAck>(a.socket, 'call:invite', { to: { phone: national } });
      expect(inv.peer.userId).to.equal(b.user.userId);
      await b.inbox.next('call:incoming', inv.callId);
      await ok(a.socket, 'call:cancel', { callId: inv.callId });
      const again = await ok<InviteAck>(a.socket, 'call:invite', { to: { phone: b.user.phone } });
      expect(again.peer.userId).to.equal(b.user.userId);
      await ok(a.socket, 'call:cancel', { callId: again.callId });
      const spaced = await ok<InviteAck>(a.socket, 'call:invite', { to: { phone: `+44 ${b.user.phone.slice(3, 7)} ${b.user.phone.slice(7)}` } });
      expect(spaced.peer.userId).to.equal(b.user.userId);
      await ok(a.socket, 'call:cancel', { callId: spaced.callId });
      expect(await errorCode(a.socket, 'call:invite', { to: { phone: '+44 12' } })).to.equal('PHONE_INVALID');
      expect(await errorCode(a.socket, 'call:invite', { to: { phone: 'not a number' } })).to.equal('PHONE_INVALID');
      expect(await errorCode(a.socket, 'call:invite', { to: { phone: '+14155550100' } })).to.equal('CALLEE_NOT_FOUND');
    });

    it('sends either side\'s mute and video changes to the other, and shows them in the call view', async () => {
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      await ok(a.socket, 'call:media-state', { callId, audio: false, video: true });
      expect(await b.inbox.next('call:media-state', callId)).to.deep.equal({ callId, audio: false, video: true });
      expect((await view(b, callId)).peerMedia).to.deep.equal({ audio: false, video: true });
      await ok(b.socket, 'call:media-state', { callId, audio: true, video: false });
      expect(await a.inbox.next('call:media-state', callId)).to.deep.equal({ callId, audio: true, video: false });
      const listed = await ok<{ calls: View[] }>(a.socket, 'call:list', {});
      expect(listed.calls).to.have.length(1);
      expect(listed.calls[0]).to.include({ callId, role: 'caller', state: 'answered', thisDevice: true, peerConnection: 'online' });
      await ok(b.socket, 'call:hangup', { callId });
      const fact = await facts.next(callId);
      // Answered but never reported connected: media failed, whoever hung up.
      expect(fact).to.include({ disposition: 'FAILED', endReason: 'completed', hangupBy: 'callee', mediaPath: 'none' });
    });
  });

  describe('unanswered calls', () => {
    it('decline: the caller hears declined and the fact says DECLINED', async () => {
      const a = await newUser();
      const b = await newUser();
      const { callId } = await invite(a, b);
      await b.inbox.next('call:incoming', callId);
      await ok(b.socket, 'call:reject', { callId });
      expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('declined');
      expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('declined');
      const fact = await facts.next(callId);
      expect(fact).to.include({ disposition: 'DECLINED', endReason: 'declined', hangupBy: 'callee', mediaPath: 'none', participantCount: 2 });
      expect(fact.answeredAt).to.equal(undefined);
    });

    it('busy: a callee already in a call is not rung, and the caller hears busy', async () => {
      const a = await newUser();
      const b = await newUser();
      const c = await newUser();
      const bc = await answeredCall(b, c);
      const inv = await invite(a, b);
      expect(inv).to.include({ state: 'ended', endReason: 'busy' });
      expect((await a.inbox.next<{ reason: string }>('call:ended', inv.callId)).reason).to.equal('busy');
      const fact = await facts.next(inv.callId);
      expect(fact).to.include({ disposition: 'BUSY', endReason: 'busy', hangupBy: 'system' });
      expect(b.inbox.all('call:incoming', inv.callId)).to.deep.equal([]);
      expect(b.inbox.all('call:ended', inv.callId)).to.deep.equal([]);
      // The call in progress is untouched; the busy caller is free to call again.
      expect((await view(b, bc)).state).to.equal('answered');
      expect((await ok<{ calls: unknown[] }>(a.socket, 'call:list', {})).calls).to.deep.equal([]);
      // A party already in a call cannot start another.
      const code = await ack(b.socket, 'call:invite', { to: { userId: a.user.userId } });
      expect(code.ok).to.equal(false);
      if (!code.ok) {
        expect(code.error.code).to.equal('CALL_INVALID_STATE');
        expect(code.error.details).to.deep.equal({ callId: bc });
      }
    });

    it('cancel: every ringing device stops, and a late accept is refused', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const { callId } = await invite(a, b1);
      await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
      await ok(a.socket, 'call:cancel', { callId });
      for (const d of [a, b1, b2]) expect((await d.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('cancelled');
      expect(await errorCode(b1.socket, 'call:accept', { callId })).to.equal('CALL_INVALID_STATE');
      expect(await facts.next(callId)).to.include({ disposition: 'CANCELLED', endReason: 'cancelled', hangupBy: 'caller' });
    });

    it('a caller hanging up before the answer cancels; a callee must decline instead', async () => {
      const a = await newUser();
      const b = await newUser();
      const { callId } = await invite(a, b);
      await b.inbox.next('call:incoming', callId);
      expect(await errorCode(b.socket, 'call:hangup', { callId })).to.equal('CALL_INVALID_STATE');
      expect(await errorCode(b.socket, 'call:cancel', { callId })).to.equal('CALL_INVALID_STATE');
      expect(await errorCode(a.socket, 'call:reject', { callId })).to.equal('CALL_INVALID_STATE');
      expect(await errorCode(a.socket, 'call:accept', { callId })).to.equal('CALL_INVALID_STATE');
      await ok(a.socket, 'call:hangup', { callId });
      expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('cancelled');
    });
  });

  describe('multi-device', () => {
    it('rings every device; the first to answer wins and the others hear answered_elsewhere', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const { callId } = await invite(a, b1);
      await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
      await ok(b1.socket, 'call:accept', { callId });
      expect((await b2.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('answered_elsewhere');
      await a.inbox.next('call:accepted', callId);
      expect(await errorCode(b2.socket, 'call:accept', { callId })).to.equal('CALL_ALREADY_ANSWERED');
      expect(await errorCode(b2.socket, 'call:reject', { callId })).to.equal('CALL_ALREADY_ANSWERED');
      expect(await errorCode(b2.socket, 'call:hangup', { callId })).to.equal('CALL_ALREADY_ANSWERED');
      expect(await errorCode(b2.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(1) })).to.equal('CALL_ALREADY_ANSWERED');
      // Accepting twice on the winning device is harmless.
      await ok(b1.socket, 'call:accept', { callId });
      expect((await view(b2, callId)).thisDevice).to.equal(false);
      expect((await view(b1, callId)).thisDevice).to.equal(true);
      await ok(b1.socket, 'call:hangup', { callId });
      expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('completed');
      expect((await b1.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('completed');
      await facts.next(callId);
      expect(b2.inbox.all('call:ended', callId)).to.have.length(1);
      expect(a.inbox.all('call:accepted', callId)).to.have.length(1);
    });

    it('a decline on one device ends the call: that device hears declined, the others declined_elsewhere', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const { callId } = await invite(a, b1);
      await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
      await ok(b2.socket, 'call:reject', { callId, reason: 'declined' });
      expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('declined');
      expect((await b2.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('declined');
      expect((await b1.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('declined_elsewhere');
      expect(await facts.next(callId)).to.include({ disposition: 'DECLINED', hangupBy: 'callee' });
    });

    it('a device that is busy stops ringing alone; the call ends busy when no device rings any more', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const first = await invite(a, b1);
      await Promise.all([b1.inbox.next('call:incoming', first.callId), b2.inbox.next('call:incoming', first.callId)]);
      await ok(b1.socket, 'call:reject', { callId: first.callId, reason: 'busy' });
      expect((await view(a, first.callId)).state).to.equal('ringing');
      await ok(b2.socket, 'call:accept', { callId: first.callId });
      await a.inbox.next('call:accepted', first.callId);
      await ok(a.socket, 'call:hangup', { callId: first.callId });
      await facts.next(first.callId);

      const second = await invite(a, b1);
      await Promise.all([b1.inbox.next('call:incoming', second.callId), b2.inbox.next('call:incoming', second.callId)]);
      await ok(b1.socket, 'call:reject', { callId: second.callId, reason: 'busy' });
      await ok(b2.socket, 'call:reject', { callId: second.callId, reason: 'busy' });
      expect((await a.inbox.next<{ reason: string }>('call:ended', second.callId)).reason).to.equal('busy');
      expect(await facts.next(second.callId)).to.include({ disposition: 'BUSY', hangupBy: 'callee' });
    });

    it('two devices accepting at the same instant: exactly one wins', async () => {
      for (let round = 0; round < 5; round++) {
        const a = await newUser();
        const b1 = await newUser();
        const b2 = await otherDevice(b1);
        const { callId } = await invite(a, b1);
        await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
        const results = await Promise.all([ack(b1.socket, 'call:accept', { callId }), ack(b2.socket, 'call:accept', { callId })]);
        expect(results.filter((r) => r.ok)).to.have.length(1);
        const loser = results.find((r) => !r.ok);
        expect(loser && !loser.ok && loser.error.code).to.equal('CALL_ALREADY_ANSWERED');
        await a.inbox.next('call:accepted', callId);
        await sleep(50);
        expect(a.inbox.all('call:accepted', callId)).to.have.length(1);
        await ok(a.socket, 'call:hangup', { callId });
        for (const s of open.splice(0)) s.close();
      }
    });
  });

  describe('glare', () => {
    it('two users calling each other at the same moment end up in one call', async () => {
      for (let round = 0; round < 5; round++) {
        const a = await newUser();
        const b = await newUser();
        const [ia, ib] = await Promise.all([invite(a, b, { sdp: fakeSdp() }), invite(b, a, { sdp: fakeSdp() })]);
        expect(ia.callId).to.equal(ib.callId);
        const callId = ia.callId;
        const [callerSide, calleeSide] = ia.glare ? [b, a] : [a, b];
        const calleeAck = ia.glare ? ia : ib;
        expect(calleeAck).to.include({ role: 'callee', state: 'answered', glare: true });
        expect(calleeAck.sdp).to.be.a('string');
        expect((ia.glare ? ib : ia)).to.include({ role: 'caller', glare: false });
        await callerSide.inbox.next('call:accepted', callId);
        // Both see the same single call, and signals flow between them.
        for (const d of [a, b]) {
          const list = await ok<{ calls: View[] }>(d.socket, 'call:list', {});
          expect(list.calls.map((c) => [c.callId, c.state])).to.deep.equal([[callId, 'answered']]);
        }
        await ok(calleeSide.socket, 'call:signal', { callId, type: 'answer', sdp: fakeSdp() });
        expect((await callerSide.inbox.next<{ type: string }>('call:signal', callId)).type).to.equal('answer');
        await ok(a.socket, 'call:hangup', { callId });
        await facts.next(callId);
        await sleep(30);
        expect(facts.facts.filter((f) => f.parties.some((p) => p.userId === a.user.userId))).to.have.length(1);
        for (const s of open.splice(0)) s.close();
      }
    });

    it('a crossing invite answers the ringing call, handing over the offer and early candidates; the callee\'s other devices stop', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const offer = fakeSdp(700);
      const { callId } = await invite(a, b1, { sdp: offer });
      await b2.inbox.next('call:incoming', callId);
      await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(7) });
      const crossing = await invite(b1, a, { sdp: fakeSdp() });
      expect(crossing).to.include({ callId, role: 'callee', state: 'answered', glare: true, sdp: offer });
      expect(crossing.candidates).to.deep.equal([candidate(7)]);
      expect(crossing.peer.userId).to.equal(a.user.userId);
      await a.inbox.next('call:accepted', callId);
      expect((await b2.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('answered_elsewhere');
      expect(b1.inbox.all('call:ended', callId)).to.deep.equal([]);
      await ok(b1.socket, 'call:hangup', { callId });
      expect(await facts.next(callId)).to.include({ hangupBy: 'callee', endReason: 'completed' });
    });
  });

  describe('signaling', () => {
    it('relays trickle ICE: early candidates to every ringing device, then only between the two devices of the call', async () => {
      const a = await newUser();
      const b1 = await newUser();
      const b2 = await otherDevice(b1);
      const { callId } = await invite(a, b1, { sdp: fakeSdp() });
      await Promise.all([b1.inbox.next('call:incoming', callId), b2.inbox.next('call:incoming', callId)]);
      expect(await errorCode(b1.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(9) })).to.equal('CALL_INVALID_STATE');
      expect(await errorCode(a.socket, 'call:signal', { callId, type: 'answer', sdp: fakeSdp() })).to.equal('CALL_INVALID_STATE');

      await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(1) });
      for (const d of [b1, b2]) {
        expect(await d.inbox.next('call:signal', callId)).to.deep.equal({ callId, type: 'candidate', candidate: candidate(1) });
      }
      await ok(b1.socket, 'call:accept', { callId, sdp: fakeSdp() });
      await a.inbox.next('call:accepted', callId);

      await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(2) });
      await ok(a.socket, 'call:signal', { callId, type: 'end-of-candidates' });
      await ok(b1.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(3) });
      await ok(b1.socket, 'call:signal', { callId, type: 'end-of-candidates' });
      // A renegotiation (e.g. adding video): the callee offers, the caller answers.
      const reoffer = fakeSdp(2000);
      await ok(b1.socket, 'call:signal', { callId, type: 'offer', sdp: reoffer });
      await ok(a.socket, 'call:signal', { callId, type: 'answer', sdp: 'v=0\r\nanswer' });

      const deadline = Date.now() + 3000;
      while (b1.inbox.all('call:signal', callId).length < 4 || a.inbox.all('call:signal', callId).length < 3) {
        if (Date.now() > deadline) throw new Error('signals did not arrive');
        await sleep(10);
      }
      expect(b1.inbox.all('call:signal', callId).map((s) => s.type)).to.deep.equal(['candidate', 'candidate', 'end-of-candidates', 'answer']);
      expect(a.inbox.all('call:signal', callId)).to.deep.equal([
        { callId, type: 'candidate', candidate: candidate(3) },
        { callId, type: 'end-of-candidates' },
        { callId, type: 'offer', sdp: reoffer },
      ]);
      await sleep(100);
      // The device that did not answer got only what was sent while it rang.
      expect(b2.inbox.all('call:signal', callId)).to.have.length(1);
      await ok(a.socket, 'call:hangup', { callId });
    });

    it('rings a device that comes online during the call (e.g. woken by push) with the offer and early candidates', async () => {
      const a = await newUser();
      const bUser = await createUser(hub);
      const offer = fakeSdp(800);
      const inv = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: bUser.userId }, sdp: offer });
      expect(inv.state).to.equal('inviting');
      await ok(a.socket, 'call:signal', { callId: inv.callId, type: 'candidate', candidate: candidate(4) });
      await ok(a.socket, 'call:signal', { callId: inv.callId, type: 'end-of-candidates' });
      const b = await connect(bUser);
      const incoming = await b.inbox.next<{ sdp: string; candidates: unknown[]; candidatesComplete: boolean; caller: { userId: string } }>('call:incoming', inv.callId);
      expect(incoming.sdp).to.equal(offer);
      expect(incoming.candidates).to.deep.equal([candidate(4)]);
      expect(incoming.candidatesComplete).to.equal(true);
      expect(incoming.caller.userId).to.equal(a.user.userId);
      await a.inbox.next('call:ringing', inv.callId);
      await ok(b.socket, 'call:accept', { callId: inv.callId });
      await a.inbox.next('call:accepted', inv.callId);
      await ok(b.socket, 'call:hangup', { callId: inv.callId });
    });

    it('keeps at most a bounded number of early signals', async () => {
      const a = await newUser();
      const b = await newUser();
      const { callId } = await invite(a, b);
      for (let i = 0; i < 64; i++) await ok(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(i) });
      expect(await errorCode(a.socket, 'call:signal', { callId, type: 'candidate', candidate: candidate(99) })).to.equal('RATE_LIMITED');
      await ok(a.socket, 'call:cancel', { callId });
    });
  });

  describe('authorization', () => {
    it('a third user guessing a call id gets CALL_NOT_FOUND for everything and reaches no one', async () => {
      const a = await newUser();
      const b = await newUser();
      const eve = await newUser();
      const callId = await answeredCall(a, b);
      const attempts: [string, Record<string, unknown>][] = [
        ['call:signal', { callId, type: 'candidate', candidate: candidate(66) }],
        ['call:signal', { callId, type: 'offer', sdp: fakeSdp() }],
        ['call:accept', { callId }],
        ['call:reject', { callId }],
        ['call:cancel', { callId }],
        ['call:hangup', { callId }],
        ['call:media-state', { callId, audio: false, video: false }],
        ['call:report', { callId, event: 'ice-failed' }],
        ['call:report', { callId, event: 'quality', rttMs: 1 }],
        ['call:state', { callId }],
      ];
      for (const [event, payload] of attempts) {
        const real = await ack(eve.socket, event, payload);
        const made = await ack(eve.socket, event, { ...payload, callId: 'cDoesNotExist123' });
        expect(real, event).to.deep.equal(made);
        expect(!real.ok && real.error.code, event).to.equal('CALL_NOT_FOUND');
      }
      await sleep(100);
      expect(a.inbox.all('call:signal')).to.deep.equal([]);
      expect(b.inbox.all('call:signal')).to.deep.equal([]);
      expect(a.inbox.all('call:media-state')).to.deep.equal([]);
      expect((await view(a, callId)).state).to.equal('answered');
      expect((await ok<{ calls: unknown[] }>(eve.socket, 'call:list', {})).calls).to.deep.equal([]);
      await ok(a.socket, 'call:hangup', { callId });
    });

    it('ends the call of a user who erases the account, and leaves no call record naming them', async () => {
      const a = await newUser();
      const b = await newUser();
      const c = await newUser();
      // An earlier call of b's, over and recorded (its fact is out), still held for late requests.
      const earlier = await answeredCall(c, b);
      await ok(c.socket, 'call:hangup', { callId: earlier });
      await facts.next(earlier);
      expect((await view(c, earlier)).state).to.equal('ended');
      const callId = await answeredCall(a, b);
      const res = await fetch(`${hub.url}/v1/me`, { method: 'DELETE', headers: { authorization: `Bearer ${b.user.accessToken}` } });
      expect(res.status).to.equal(200);
      expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('party_lost');
      expect(await facts.next(callId)).to.include({ endReason: 'party_lost', hangupBy: 'system' });
      // Identity's erasure tombstone (keys.userErased) names the user on purpose, for a while; nothing else may.
      let left: string[] = [];
      for (const deadline = Date.now() + 3000; Date.now() < deadline; await sleep(50)) {
        left = (await keysMentioning(hub.ctx.redis, [b.user.userId])).filter((k) => k !== keys.userErased(b.user.userId));
        if (left.length === 0) break;
      }
      expect(left, 'keys still naming the erased user').to.deep.equal([]);
      expect(await errorCode(c.socket, 'call:state', { callId: earlier })).to.equal('CALL_NOT_FOUND');
      expect(facts.of(earlier)).to.have.length(1);
      expect(facts.of(callId)).to.have.length(1);
    });
  });

  describe('direct media failure', () => {
    it('without a relay fallback, a reported ICE failure ends the call failed', async () => {
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      await ok(b.socket, 'call:report', { callId, event: 'ice-failed' });
      expect((await a.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('failed');
      expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('failed');
      expect(await facts.next(callId)).to.include({ disposition: 'FAILED', endReason: 'failed', hangupBy: 'system', mediaPath: 'none' });
    });

    it('with a relay fallback, the call moves to the relay once and its fact says relayed', async () => {
      const moved: RelayFallbackCall[] = [];
      hub.ctx.calls!.setRelayFallback({ moveToRelay: async (call) => { moved.push(call); return { relayNode: 'relay-1' }; } });
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      await ok(a.socket, 'call:report', { callId, event: 'ice-failed' });
      await ok(b.socket, 'call:report', { callId, event: 'ice-failed' });
      const deadline = Date.now() + 3000;
      while (!(await hub.ctx.calls!.get(callId))?.relayed) {
        if (Date.now() > deadline) throw new Error('not relayed');
        await sleep(10);
      }
      expect(moved).to.have.length(1);
      expect(moved[0]).to.deep.include({ callId, video: false });
      expect(moved[0]!.caller).to.include({ userId: a.user.userId, deviceId: a.user.deviceId });
      expect(moved[0]!.callee).to.include({ userId: b.user.userId, deviceId: b.user.deviceId });
      expect(moved[0]!.caller.sessionId).to.be.a('string');
      await ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } });
      expect((await view(a, callId)).state).to.equal('connected');
      await ok(b.socket, 'call:hangup', { callId });
      expect(await facts.next(callId)).to.include({ kind: 'relayed', mediaPath: 'relay', relayNode: 'relay-1', disposition: 'ANSWERED' });
    });

    it('when the relay cannot take the call, it ends failed', async () => {
      hub.ctx.calls!.setRelayFallback({ moveToRelay: async () => { throw new Error('no relay'); } });
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      await ok(a.socket, 'call:report', { callId, event: 'ice-failed' });
      expect((await b.inbox.next<{ reason: string }>('call:ended', callId)).reason).to.equal('failed');
    });
  });

  describe('bad input', () => {
    it('refuses an oversized SDP with SDP_TOO_LARGE and changes nothing', async () => {
      const a = await newUser();
      const b = await newUser();
      const huge = fakeSdp(SDP_MAX_LENGTH + 1);
      expect(await errorCode(a.socket, 'call:invite', { to: { userId: b.user.userId }, sdp: huge })).to.equal('SDP_TOO_LARGE');
      expect((await ok<{ calls: unknown[] }>(a.socket, 'call:list', {})).calls).to.deep.equal([]);
      const callId = await answeredCall(a, b);
      expect(await errorCode(a.socket, 'call:signal', { callId, type: 'offer', sdp: huge })).to.equal('SDP_TOO_LARGE');
      expect(await errorCode(b.socket, 'call:accept', { callId, sdp: huge })).to.equal('SDP_TOO_LARGE');
      await sleep(50);
      expect(b.inbox.all('call:signal', callId)).to.deep.equal([]);
      expect((await view(a, callId)).state).to.equal('answered');
      await ok(a.socket, 'call:hangup', { callId });
    });

    it('refuses malformed and unknown events with stable codes and keeps serving', async () => {
      const a = await newUser();
      const b = await newUser();
      const cases: [string, unknown, string][] = [
        ['call:invite', {}, 'VALIDATION_FAILED'],
        ['call:invite', { to: { userId: b.user.userId }, extra: true }, 'VALIDATION_FAILED'],
        ['call:invite', { to: { userId: b.user.userId, phone: b.user.phone } }, 'VALIDATION_FAILED'],
        ['call:invite', { to: { userId: '../../etc' } }, 'VALIDATION_FAILED'],
        ['call:invite', 'call me', 'VALIDATION_FAILED'],
        ['call:signal', { callId: 'c1', type: 'bogus' }, 'VALIDATION_FAILED'],
        ['call:signal', { callId: 'c1', type: 'candidate' }, 'VALIDATION_FAILED'],
        ['call:signal', { callId: 'c1', type: 'candidate', candidate: { candidate: 'x'.repeat(2000) } }, 'VALIDATION_FAILED'],
        ['call:report', { callId: 'c1', event: 'quality', loss: 5 }, 'VALIDATION_FAILED'],
        ['call:report', { callId: 'c1', event: 'connected', path: { local: 'tcp', remote: 'host' } }, 'VALIDATION_FAILED'],
        ['call:reject', { callId: 'c1', reason: 'rude' }, 'VALIDATION_FAILED'],
        ['call:accept', { callId: 'x'.repeat(65) }, 'VALIDATION_FAILED'],
        ['call:nope', { callId: 'c1' }, 'UNKNOWN_EVENT'],
      ];
      for (const [event, payload, code] of cases) expect(await errorCode(a.socket, event, payload), `${event} ${JSON.stringify(payload).slice(0, 60)}`).to.equal(code);
      expect(await errorCode(a.socket, 'call:invite', { to: { userId: a.user.userId } })).to.equal('CALL_SELF');
      expect(await errorCode(a.socket, 'call:invite', { to: { userId: 'uNoSuchUser' } })).to.equal('CALLEE_NOT_FOUND');
      const callId = await answeredCall(a, b);
      await ok(a.socket, 'call:hangup', { callId });
    });

    it('answers requests on ended calls with CALL_INVALID_STATE, and a cancel after the answer with CALL_ALREADY_ANSWERED', async () => {
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      expect(await errorCode(a.socket, 'call:cancel', { callId })).to.equal('CALL_ALREADY_ANSWERED');
      expect(await errorCode(b.socket, 'call:reject', { callId })).to.equal('CALL_INVALID_STATE');
      await ok(b.socket, 'call:hangup', { callId });
      for (const [d, event, payload] of [
        [a, 'call:hangup', { callId }],
        [b, 'call:hangup', { callId }],
        [b, 'call:accept', { callId }],
        [a, 'call:cancel', { callId }],
        [a, 'call:signal', { callId, type: 'candidate', candidate: candidate(1) }],
        [a, 'call:media-state', { callId, audio: true, video: true }],
        [a, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } }],
      ] as [Device, string, unknown][]) {
        expect(await errorCode(d.socket, event, payload), event).to.equal('CALL_INVALID_STATE');
      }
      expect((await view(a, callId))).to.include({ state: 'ended', endReason: 'completed' });
      await facts.next(callId);
      expect(facts.of(callId)).to.have.length(1);
    });

    it('disconnects a socket flooding call events; the hub and the other party carry on', async () => {
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      const closing = a.inbox.next<{ reason: string }>('session:closing');
      const raw = a.socket as unknown as { emit(e: string, p: unknown, ack: () => void): void };
      for (let i = 0; i < 400; i++) raw.emit('call:signal', { callId, type: 'candidate', candidate: candidate(i % 200) }, () => undefined);
      expect((await closing).reason).to.equal('rate_limited');
      expect((await view(b, callId)).state).to.not.equal('ended');
      expect((await b.inbox.next<{ state: string }>('call:peer-connection', callId)).state).to.equal('lost');
      await ok(b.socket, 'call:hangup', { callId });
      expect(await facts.next(callId)).to.include({ endReason: 'completed', hangupBy: 'callee' });
    });
  });

  describe('GET /v1/ice-servers', () => {
    it('returns STUN and short-lived coturn REST credentials that carry no user id', async () => {
      const a = await createUser(hub);
      const res = await fetch(`${hub.url}/v1/ice-servers`, { headers: { authorization: `Bearer ${a.accessToken}` } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const body = (await res.json()) as { iceServers: { urls: string[]; username?: string; credential?: string }[]; ttl: number };
      expect(body.ttl).to.equal(300);
      expect(body.iceServers[0]).to.deep.equal({ urls: ['stun:stun.example.test:3478'] });
      const turn = body.iceServers[1]!;
      expect(turn.urls).to.deep.equal(['turn:turn.example.test:3478?transport=udp', 'turns:turn.example.test:5349']);
      const [expiry, random] = turn.username!.split(':');
      expect(Number(expiry) - Date.now() / 1000).to.be.within(290, 301);
      expect(random).to.match(/^[A-Za-z0-9_-]{8,}$/);
      expect(turn.username).to.not.include(a.userId);
      expect(turn.credential).to.equal(createHmac('sha1', TURN_SECRET).update(turn.username!).digest('base64'));
      const again = (await (await fetch(`${hub.url}/v1/ice-servers`, { headers: { authorization: `Bearer ${a.accessToken}` } })).json()) as typeof body;
      expect(again.iceServers[1]!.username).to.not.equal(turn.username);
    });

    it('requires a valid access token of a live session', async () => {
      const none = await fetch(`${hub.url}/v1/ice-servers`);
      expect(none.status).to.equal(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).to.equal('UNAUTHENTICATED');
      const forged = await fetch(`${hub.url}/v1/ice-servers`, { headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x' } });
      expect(((await forged.json()) as { error: { code: string } }).error.code).to.equal('TOKEN_INVALID');
      const user = await createUser(hub);
      const sessions = await hub.ctx.redis.hkeys(`user:{${user.userId}}:sessions`);
      await hub.ctx.sessions.revoke(user.userId, sessions[0]!);
      const revoked = await fetch(`${hub.url}/v1/ice-servers`, { headers: { authorization: `Bearer ${user.accessToken}` } });
      expect(revoked.status).to.equal(401);
      expect(((await revoked.json()) as { error: { code: string } }).error.code).to.equal('SESSION_REVOKED');
    });
  });
});
