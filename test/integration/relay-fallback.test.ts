import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { RelayServices } from '../../server/relay/registerRelay.js';
import type { RelayNode } from '../../relay/RelayNode.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import { createUser } from '../support/users.js';
import { FactLog, errorCode, fakeSdp, ok } from '../support/calls.js';
import { connectDevice, waitFor, type Device } from '../support/conference.js';
import {
  TEST_RELAY_SECRET, audioRtpParameters, clientDtlsParameters, deviceRtpCapabilities, eventually, startTestRelay, videoRtpParameters,
} from '../support/relay.js';

/**
 * The P2P -> relay switch of 1:1 calls at the signaling level, with a real
 * relay node: the hub moves a call whose direct media failed onto a relay
 * room named after the call, both devices are told and may use it, the call
 * goes on with the same id and is recorded as relayed.
 */
describe('1:1 call relay fallback', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let relayNode: RelayNode;
  let hub: Hub;
  let relay: RelayServices;
  let facts: FactLog;
  const open: ClientSocket[] = [];

  before(async () => {
    redis = await TestRedis.start();
    relayNode = await startTestRelay(redis.url, { RELAY_ID: 'fallback-node' });
    hub = await startTestHub(redis.url, {
      RELAY_SECRET: TEST_RELAY_SECRET,
      RELAY_DIRECTORY_REFRESH_MS: '200',
      RELAY_REQUEST_TIMEOUT_MS: '3000',
      CALL_CONNECT_TIMEOUT_S: '2',
      CALL_FINAL_REPORT_S: '0',
    });
    relay = hub.ctx.relay!;
    facts = new FactLog(hub);
    await eventually(() => relay.service.connectedNodes.length === 1, 'link to the relay node');
  });
  after(async () => {
    for (const s of open.splice(0)) s.close();
    await hub?.close();
    await relayNode?.close();
    await redis?.stop();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  const newUser = async (): Promise<Device> => connectDevice(hub, await createUser(hub), open);

  /** a calls b, b answers; nobody reports media connected. */
  async function answeredCall(a: Device, b: Device): Promise<string> {
    const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId }, sdp: fakeSdp() });
    await b.inbox.next('call:incoming', callId);
    await ok(b.socket, 'call:accept', { callId, sdp: fakeSdp() });
    await a.inbox.next('call:accepted', callId);
    return callId;
  }
  const callState = async (d: Device, callId: string) => (await ok<{ call: { state: string } }>(d.socket, 'call:state', { callId })).call.state;

  it('moves a call to a relay room when a client reports ICE failure; it goes on there and is recorded as relayed', async () => {
    const a = await newUser();
    const b = await newUser();
    const mallory = await newUser();
    const callId = await answeredCall(a, b);
    await ok(b.socket, 'call:report', { callId, event: 'ice-failed' });

    const toA = await a.inbox.next('call:relay', callId);
    const toB = await b.inbox.next('call:relay', callId);
    expect(toA).to.deep.equal({ callId, roomId: callId });
    expect(toB).to.deep.equal(toA);
    expect(await relay.service.nodeOf(callId)).to.equal('fallback-node');
    // Only the call's two devices may use the room.
    expect(await errorCode(mallory.socket, 'media:join', { roomId: callId })).to.equal('NOT_IN_ROOM');
    for (const d of [a, b]) {
      await ok(d.socket, 'media:join', { roomId: callId });
      const t = await ok<{ id: string }>(d.socket, 'media:transport-create', { roomId: callId, direction: 'send' });
      await ok(d.socket, 'media:transport-connect', { roomId: callId, transportId: t.id, dtlsParameters: clientDtlsParameters() });
    }
    expect(await callState(a, callId)).to.equal('answered');
    // The other party's own P2P failure report changes nothing: the move happens once.
    await ok(a.socket, 'call:report', { callId, event: 'ice-failed' });
    await ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } });
    expect(await callState(b, callId)).to.equal('connected');
    expect(a.inbox.all('call:relay', callId)).to.have.length(1);
    expect(b.inbox.all('call:relay', callId)).to.have.length(1);

    await ok(a.socket, 'call:hangup', { callId });
    expect(await b.inbox.next('call:ended', callId)).to.deep.equal({ callId, reason: 'completed' });
    const fact = await facts.next(callId);
    expect(fact).to.include({ kind: 'relayed', mediaPath: 'relay', relayNode: 'fallback-node', disposition: 'ANSWERED', endReason: 'completed' });
    // The room closes with the call.
    await eventually(async () => (await relay.service.nodeOf(callId)) === null, 'the call\'s relay room to close');
    expect(relayNode.room(callId)).to.equal(undefined);
    expect(await relay.membership.members(callId)).to.deep.equal([]);
    expect(await errorCode(a.socket, 'media:join', { roomId: callId })).to.equal('NOT_IN_ROOM');
  });

  it('moves a call whose media does not connect within CALL_CONNECT_TIMEOUT_S', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b);
    // Nobody reports anything: the connect timer moves it.
    expect(await a.inbox.next('call:relay', callId, 8000)).to.deep.equal({ callId, roomId: callId });
    expect(await b.inbox.next('call:relay', callId)).to.deep.equal({ callId, roomId: callId });
    await ok(b.socket, 'media:join', { roomId: callId });
    await ok(b.socket, 'media:transport-create', { roomId: callId, direction: 'recv' });
    await ok(b.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } });
    expect(await callState(a, callId)).to.equal('connected');
    await ok(b.socket, 'call:hangup', { callId });
    expect(await facts.next(callId)).to.include({ kind: 'relayed', mediaPath: 'relay', relayNode: 'fallback-node', hangupBy: 'callee' });
  });

  it('carries both parties\' tracks through the relay room', async () => {
    const a = await newUser();
    const b = await newUser();
    const callId = await answeredCall(a, b);
    await ok(a.socket, 'call:report', { callId, event: 'ice-failed' });
    const roomId = ((await b.inbox.next<{ roomId: string }>('call:relay', callId)).roomId);
    await a.inbox.next('call:relay', callId);

    const setUp = async (d: Device) => {
      await ok(d.socket, 'media:join', { roomId });
      const send = await ok<{ id: string }>(d.socket, 'media:transport-create', { roomId, direction: 'send' });
      const recv = await ok<{ id: string }>(d.socket, 'media:transport-create', { roomId, direction: 'recv' });
      await ok(d.socket, 'media:transport-connect', { roomId, transportId: send.id, dtlsParameters: clientDtlsParameters() });
      await ok(d.socket, 'media:transport-connect', { roomId, transportId: recv.id, dtlsParameters: clientDtlsParameters() });
      return { send: send.id, recv: recv.id };
    };
    const ta = await setUp(a);
    const tb = await setUp(b);
    const fromA = await ok<{ producerId: string }>(a.socket, 'media:produce', { roomId, transportId: ta.send, kind: 'audio', rtpParameters: audioRtpParameters(1001), appData: { source: 'mic' } });
    const fromB = await ok<{ producerId: string }>(b.socket, 'media:produce', { roomId, transportId: tb.send, kind: 'video', rtpParameters: videoRtpParameters(2002), appData: { source: 'camera' } });
    expect(await waitFor(b, 'media:producer-added', (p) => p.producerId === fromA.producerId)).to.deep.include({ roomId, userId: a.user.userId, kind: 'audio' });
    expect(await waitFor(a, 'media:producer-added', (p) => p.producerId === fromB.producerId)).to.deep.include({ roomId, userId: b.user.userId, kind: 'video' });

    const atB = await ok<{ consumerId: string; kind: string; rtpParameters: { codecs: { mimeType: string }[] } }>(b.socket, 'media:consume', {
      roomId, transportId: tb.recv, producerId: fromA.producerId, rtpCapabilities: deviceRtpCapabilities(),
    });
    const atA = await ok<{ consumerId: string; kind: string; rtpParameters: { codecs: { mimeType: string }[] } }>(a.socket, 'media:consume', {
      roomId, transportId: ta.recv, producerId: fromB.producerId, rtpCapabilities: deviceRtpCapabilities(),
    });
    expect(atB.rtpParameters.codecs[0]!.mimeType).to.equal('audio/opus');
    expect(atA.rtpParameters.codecs.map((c) => c.mimeType)).to.include('video/VP8');
    await ok(b.socket, 'media:consumer-resume', { roomId, consumerId: atB.consumerId });
    await ok(a.socket, 'media:consumer-resume', { roomId, consumerId: atA.consumerId });
    // A device cannot consume on the other's transport.
    expect(await errorCode(a.socket, 'media:consume', { roomId, transportId: tb.recv, producerId: fromB.producerId, rtpCapabilities: deviceRtpCapabilities() })).to.equal('TRANSPORT_NOT_FOUND');
    const counts = relayNode.room(roomId)!;
    expect(counts.peerCount).to.equal(2);

    await ok(b.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } });
    await ok(b.socket, 'call:hangup', { callId });
    expect(await facts.next(callId)).to.include({ kind: 'relayed', mediaPath: 'relay' });
    await eventually(() => relayNode.room(roomId) === undefined, 'the room and its transports to close');
  });

  it('ends the call failed when no relay node can take it', async () => {
    await relay.service.drain('fallback-node', true);
    try {
      await eventually(async () => (await relay.service.nodes()).every((n) => n.state === 'draining'), 'the node to drain');
      const a = await newUser();
      const b = await newUser();
      const callId = await answeredCall(a, b);
      await ok(a.socket, 'call:report', { callId, event: 'ice-failed' });
      expect(await a.inbox.next('call:ended', callId)).to.deep.equal({ callId, reason: 'failed' });
      expect(await b.inbox.next('call:ended', callId)).to.deep.equal({ callId, reason: 'failed' });
      expect(a.inbox.all('call:relay', callId)).to.deep.equal([]);
      expect(await facts.next(callId)).to.include({ kind: 'p2p', disposition: 'FAILED', endReason: 'failed', mediaPath: 'none' });
      expect(await relay.membership.members(callId)).to.deep.equal([]);
    } finally {
      await relay.service.drain('fallback-node', false);
    }
  });
});
