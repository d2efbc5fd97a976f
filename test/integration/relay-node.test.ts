import { expect } from 'chai';
import type { types as ms } from 'mediasoup';
import type { RelayNode } from '../../relay/RelayNode.js';
import { relayRegistryKeys, type RelayNotice, type RelayNoticeName } from '../../shared/protocol/relayControl.js';
import { TestRedis } from '../support/redis.js';
import {
  audioRtpParameters,
  clientDtlsParameters,
  connectControl,
  control,
  controlOk,
  deviceRtpCapabilities,
  h264OnlyCapabilities,
  startTestRelay,
  videoRtpParameters,
  type ControlSocket,
} from '../support/relay.js';

type ErrorAck = { ok: false; error: { code: string } };

function expectCode(res: { ok: boolean }, code: string): void {
  expect(res.ok, JSON.stringify(res)).to.equal(false);
  expect((res as ErrorAck).error.code).to.equal(code);
}

/** Resolves with the next notice `name` matching `filter`. */
function nextNotice<K extends RelayNoticeName>(socket: ControlSocket, name: K, filter: (p: RelayNotice<K>) => boolean = () => true, timeoutMs = 10_000): Promise<RelayNotice<K>> {
  return new Promise((resolve, reject) => {
    const s = socket as unknown as { on(e: string, l: (p: RelayNotice<K>) => void): void; off(e: string, l: (p: RelayNotice<K>) => void): void };
    const timer = setTimeout(() => {
      s.off(name, listener);
      reject(new Error(`timed out waiting for ${name}`));
    }, timeoutMs);
    const listener = (p: RelayNotice<K>) => {
      if (!filter(p)) return;
      clearTimeout(timer);
      s.off(name, listener);
      resolve(p);
    };
    s.on(name, listener);
  });
}

/** Sums what mediasoup itself reports for every live router of the node's workers. */
async function dumpTotals(node: RelayNode): Promise<{ routers: number; transports: number; producers: number; consumers: number }> {
  const totals = { routers: 0, transports: 0, producers: 0, consumers: 0 };
  for (const entry of node.pool.workers) {
    const dump = (await entry.worker.dump()) as { routerIds: string[] };
    totals.routers += dump.routerIds.length;
    for (const router of entry.worker.routersForTesting) {
      const r = (await router.dump()) as { transportIds: string[]; mapProducerIdConsumerIds: object; mapConsumerIdProducerId: object };
      totals.transports += r.transportIds.length;
      totals.producers += Object.keys(r.mapProducerIdConsumerIds).length;
      totals.consumers += Object.keys(r.mapConsumerIdProducerId).length;
    }
  }
  return totals;
}

describe('relay node', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let node: RelayNode;
  let hub: ControlSocket;

  before(async () => {
    redis = await TestRedis.start();
    node = await startTestRelay(redis.url, { RELAY_ID: 'node-a', RELAY_WORKERS: '2' });
    hub = await connectControl(node.controlUrl);
  });
  after(async () => {
    hub?.close();
    await node?.close();
    await redis?.stop();
  });

  let roomSeq = 0;
  const newRoomId = () => `room-${++roomSeq}`;

  async function joinWithTransports(roomId: string, peerId: string) {
    await controlOk(hub, 'peer.join', { roomId, peerId });
    const send = await controlOk(hub, 'transport.create', { roomId, peerId, direction: 'send' });
    const recv = await controlOk(hub, 'transport.create', { roomId, peerId, direction: 'recv' });
    return { send: send.id, recv: recv.id };
  }

  describe('control channel', () => {
    it('refuses a connection without the secret or with a wrong one', async () => {
      const none = await connectControl(node.controlUrl, null).catch((e: { data?: { code: string } }) => e);
      expect((none as { data?: { code: string } }).data?.code).to.equal('UNAUTHENTICATED');
      const wrong = await connectControl(node.controlUrl, 'x'.repeat(48)).catch((e: { data?: { code: string } }) => e);
      expect((wrong as { data?: { code: string } }).data?.code).to.equal('UNAUTHENTICATED');
    });

    it('answers unknown requests and malformed payloads with codes', async () => {
      const unknown = await control(hub, 'nope' as 'node.dump', {});
      expectCode(unknown, 'UNKNOWN_EVENT');
      const bad = await control(hub, 'room.ensure', { roomId: 'has space' });
      expectCode(bad, 'VALIDATION_FAILED');
      const extra = await control(hub, 'room.ensure', { roomId: 'r', extra: true });
      expectCode(extra, 'VALIDATION_FAILED');
    });

    it('registers the node in Redis with a TTL and serves /healthz and /metrics', async () => {
      const client = redis.client();
      try {
        const raw = await client.get(relayRegistryKeys.node('node-a'));
        expect(raw).to.be.a('string');
        const report = JSON.parse(raw!) as { controlUrl: string; state: string; workers: unknown[] };
        expect(report.controlUrl).to.equal(node.controlUrl);
        expect(report.state).to.equal('serving');
        expect(report.workers).to.have.length(2);
        expect(await client.pttl(relayRegistryKeys.node('node-a'))).to.be.greaterThan(0);
        expect(await client.zscore(relayRegistryKeys.nodes, 'node-a')).to.not.equal(null);
      } finally {
        client.disconnect();
      }
      const health = await fetch(`${node.controlUrl}/healthz`);
      expect(health.status).to.equal(200);
      const metrics = await (await fetch(`${node.controlUrl}/metrics`)).text();
      expect(metrics).to.contain('relay_recording_guard_refusals_total');
      expect(metrics).to.contain('relay_worker_cpu_ratio');
    });
  });

  describe('rooms, transports, producers and consumers', () => {
    it('creates a room, transports, produces audio and video, and consumes them', async () => {
      const roomId = newRoomId();
      const ensured = await controlOk(hub, 'room.ensure', { roomId });
      expect(ensured.created).to.equal(true);
      expect((ensured.rtpCapabilities.codecs as { mimeType: string }[]).map((c) => c.mimeType)).to.include.members(['audio/opus', 'video/VP8']);
      expect((await controlOk(hub, 'room.ensure', { roomId })).created).to.equal(false);

      const alice = await joinWithTransports(roomId, 'alice:d1');
      const created = await controlOk(hub, 'transport.create', { roomId, peerId: 'alice:d1', direction: 'send' });
      expect(created.iceCandidates.map((c) => c.protocol)).to.have.members(['udp', 'tcp']);
      expect(created.iceCandidates.every((c) => c.ip === '127.0.0.1')).to.equal(true);
      expect(new Set(created.iceCandidates.map((c) => c.port)).size, 'UDP and TCP share one port').to.equal(1);
      await controlOk(hub, 'transport.connect', { roomId, peerId: 'alice:d1', transportId: alice.send, dtlsParameters: clientDtlsParameters() });

      const added = nextNotice(hub, 'peer.producerAdded', (p) => p.roomId === roomId && p.kind === 'audio');
      const audio = await controlOk(hub, 'produce', { roomId, peerId: 'alice:d1', transportId: alice.send, kind: 'audio', rtpParameters: audioRtpParameters(), appData: { source: 'mic' } });
      const video = await controlOk(hub, 'produce', { roomId, peerId: 'alice:d1', transportId: alice.send, kind: 'video', rtpParameters: videoRtpParameters() });
      expect(await added).to.deep.include({ peerId: 'alice:d1', producerId: audio.producerId, paused: false, appData: { source: 'mic' } });

      const joined = await controlOk(hub, 'peer.join', { roomId, peerId: 'bob:d1' });
      expect(joined.producers.map((p) => p.producerId)).to.have.members([audio.producerId, video.producerId]);
      const bobRecv = await controlOk(hub, 'transport.create', { roomId, peerId: 'bob:d1', direction: 'recv' });
      const consumed = await controlOk(hub, 'consume', { roomId, peerId: 'bob:d1', transportId: bobRecv.id, producerId: video.producerId, rtpCapabilities: deviceRtpCapabilities() });
      expect(consumed.kind).to.equal('video');
      expect(consumed.producerId).to.equal(video.producerId);
      const codecs = consumed.rtpParameters.codecs as { mimeType: string; payloadType: number }[];
      expect(codecs.map((c) => c.mimeType)).to.deep.equal(['video/VP8', 'video/rtx']);
      expect(codecs[0]?.payloadType).to.equal(101);
      await controlOk(hub, 'consumer.resume', { roomId, peerId: 'bob:d1', consumerId: consumed.consumerId });
      const audioConsumer = await controlOk(hub, 'consume', { roomId, peerId: 'bob:d1', transportId: bobRecv.id, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() });

      const paused = nextNotice(hub, 'peer.producerPaused', (p) => p.producerId === audio.producerId);
      await controlOk(hub, 'producer.pause', { roomId, peerId: 'alice:d1', producerId: audio.producerId });
      expect((await paused).paused).to.equal(true);

      const consumerClosed = nextNotice(hub, 'consumer.closed', (p) => p.consumerId === audioConsumer.consumerId);
      const producerClosed = nextNotice(hub, 'peer.producerClosed', (p) => p.producerId === audio.producerId);
      await controlOk(hub, 'producer.close', { roomId, peerId: 'alice:d1', producerId: audio.producerId });
      expect(await consumerClosed).to.deep.include({ peerId: 'bob:d1', reason: 'producer_closed' });
      expect(await producerClosed).to.deep.include({ peerId: 'alice:d1', kind: 'audio' });

      const ice = await controlOk(hub, 'transport.restartIce', { roomId, peerId: 'bob:d1', transportId: bobRecv.id });
      expect(ice.iceParameters.usernameFragment).to.be.a('string');
      await controlOk(hub, 'room.close', { roomId });
      expect(node.room(roomId)).to.equal(undefined);
    });

    it('refuses ids that are not the peer\'s, other rooms\' producers and mismatched RTP with stable codes', async () => {
      const roomId = newRoomId();
      const otherRoom = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      await controlOk(hub, 'room.ensure', { roomId: otherRoom });
      const alice = await joinWithTransports(roomId, 'alice:d1');
      const bob = await joinWithTransports(roomId, 'bob:d1');
      const eve = await joinWithTransports(otherRoom, 'eve:d1');
      const audio = await controlOk(hub, 'produce', { roomId, peerId: 'alice:d1', transportId: alice.send, kind: 'audio', rtpParameters: audioRtpParameters() });

      // Unknown room, unknown peer.
      expectCode(await control(hub, 'peer.join', { roomId: 'no-such-room', peerId: 'x:1' }), 'ROOM_NOT_FOUND');
      expectCode(await control(hub, 'transport.create', { roomId, peerId: 'mallory:d1', direction: 'send' }), 'NOT_IN_ROOM');
      // Bob naming Alice's transport, or his recv transport to produce.
      expectCode(await control(hub, 'transport.connect', { roomId, peerId: 'bob:d1', transportId: alice.send, dtlsParameters: clientDtlsParameters() }), 'TRANSPORT_NOT_FOUND');
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: alice.send, kind: 'audio', rtpParameters: audioRtpParameters(5) }), 'TRANSPORT_NOT_FOUND');
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: bob.recv, kind: 'audio', rtpParameters: audioRtpParameters(5) }), 'TRANSPORT_NOT_FOUND');
      // Bob pausing or closing Alice's producer.
      expectCode(await control(hub, 'producer.pause', { roomId, peerId: 'bob:d1', producerId: audio.producerId }), 'PRODUCER_NOT_FOUND');
      expectCode(await control(hub, 'producer.close', { roomId, peerId: 'bob:d1', producerId: audio.producerId }), 'PRODUCER_NOT_FOUND');
      // Eve, in another room, consuming Alice's producer (with her own transport and her own room).
      expectCode(await control(hub, 'consume', { roomId: otherRoom, peerId: 'eve:d1', transportId: eve.recv, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() }), 'PRODUCER_NOT_FOUND');
      // Eve using her transport in Alice's room.
      expectCode(await control(hub, 'consume', { roomId, peerId: 'eve:d1', transportId: eve.recv, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() }), 'NOT_IN_ROOM');
      // Consuming on a send transport, or someone else's consumer.
      expectCode(await control(hub, 'consume', { roomId, peerId: 'bob:d1', transportId: bob.send, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() }), 'TRANSPORT_NOT_FOUND');
      const consumer = await controlOk(hub, 'consume', { roomId, peerId: 'bob:d1', transportId: bob.recv, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() });
      expectCode(await control(hub, 'consumer.resume', { roomId, peerId: 'alice:d1', consumerId: consumer.consumerId }), 'CONSUMER_NOT_FOUND');

      // RTP that does not match the router: a codec it does not have, a kind
      // that contradicts the codec, capabilities that cannot decode the track.
      const pcmu = { ...audioRtpParameters(7), codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }] };
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: bob.send, kind: 'audio', rtpParameters: pcmu }), 'RTP_PARAMETERS_INVALID');
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: bob.send, kind: 'video', rtpParameters: audioRtpParameters(8) }), 'RTP_PARAMETERS_INVALID');
      const orphanRtx = { ...videoRtpParameters(9), codecs: [videoRtpParameters().codecs[0]!, { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 55 } }] };
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: bob.send, kind: 'video', rtpParameters: orphanRtx }), 'RTP_PARAMETERS_INVALID');
      expectCode(await control(hub, 'consume', { roomId, peerId: 'bob:d1', transportId: bob.recv, producerId: audio.producerId, rtpCapabilities: h264OnlyCapabilities() }), 'RTP_PARAMETERS_INVALID');
      // Malformed, not merely mismatched: rejected by the schema before mediasoup sees it.
      expectCode(await control(hub, 'produce', { roomId, peerId: 'bob:d1', transportId: bob.send, kind: 'audio', rtpParameters: { codecs: [] } }), 'VALIDATION_FAILED');

      // None of it left anything behind: Bob has only his two transports and one consumer.
      const bobP = node.room(roomId)!.participant('bob:d1');
      expect(bobP.counts).to.deep.equal({ transports: 2, producers: 0, consumers: 1 });
      await controlOk(hub, 'room.close', { roomId });
      await controlOk(hub, 'room.close', { roomId: otherRoom });
    });
  });

  describe('per-participant limits', () => {
    it('holds under concurrent requests: 20 transport.create and 20 produce at once give exactly the limit', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      await controlOk(hub, 'peer.join', { roomId, peerId: 'greedy:1' });
      const before = await dumpTotals(node);

      const creates = await Promise.all(Array.from({ length: 20 }, (_, i) => control(hub, 'transport.create', { roomId, peerId: 'greedy:1', direction: i % 2 ? 'recv' : 'send' })));
      const created = creates.filter((r) => r.ok);
      expect(created, 'transports created').to.have.length(4);
      for (const r of creates.filter((x) => !x.ok)) {
        expectCode(r, 'BAD_REQUEST');
        expect((r as { error: { message: string } }).error.message).to.equal('At most 4 transports per participant');
      }
      const participant = node.room(roomId)!.participant('greedy:1');
      expect(participant.counts.transports).to.equal(4);
      expect((await dumpTotals(node)).transports - before.transports, 'transports mediasoup holds').to.equal(4);
      const send = creates.find((r, i) => r.ok && i % 2 === 0) as { id: string } | undefined;
      expect(send, 'a send transport among those created').to.not.equal(undefined);

      const produces = await Promise.all(Array.from({ length: 20 }, (_, i) => control(hub, 'produce', {
        roomId, peerId: 'greedy:1', transportId: send!.id, kind: 'audio', rtpParameters: { ...audioRtpParameters(5000 + i), mid: `m${i}` },
      })));
      expect(produces.filter((r) => r.ok), 'producers created').to.have.length(6);
      for (const r of produces.filter((x) => !x.ok)) expectCode(r, 'BAD_REQUEST');
      expect(participant.counts.producers).to.equal(6);
      expect((await dumpTotals(node)).producers - before.producers, 'producers mediasoup holds').to.equal(6);

      const dump = await controlOk(hub, 'node.dump', {});
      expect(dump.counts.transports - before.transports).to.equal(4);
      expect(dump.counts.producers - before.producers).to.equal(6);
      await controlOk(hub, 'room.close', { roomId });
    });

    it('gives a failed creation its slot back', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      const t = await joinWithTransports(roomId, 'clumsy:1');
      // Five produce requests mediasoup refuses, at once: none of them may keep a slot.
      const pcmu = { ...audioRtpParameters(7), codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }] };
      const refused = await Promise.all(Array.from({ length: 5 }, () => control(hub, 'produce', { roomId, peerId: 'clumsy:1', transportId: t.send, kind: 'audio', rtpParameters: pcmu })));
      for (const r of refused) expectCode(r, 'RTP_PARAMETERS_INVALID');
      for (let i = 0; i < 6; i++) {
        await controlOk(hub, 'produce', { roomId, peerId: 'clumsy:1', transportId: t.send, kind: 'audio', rtpParameters: { ...audioRtpParameters(6000 + i), mid: `m${i}` } });
      }
      expectCode(await control(hub, 'produce', { roomId, peerId: 'clumsy:1', transportId: t.send, kind: 'audio', rtpParameters: { ...audioRtpParameters(6100), mid: 'm99' } }), 'BAD_REQUEST');
      await controlOk(hub, 'room.close', { roomId });
    });
  });

  describe('ownership', () => {
    it('leaves nothing behind after 50 join/leave cycles and closed rooms', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      const before = await dumpTotals(node);
      // The room's own router; nothing else from this test yet.
      for (let i = 0; i < 50; i++) {
        const peerId = `cycler:${i}`;
        const t = await joinWithTransports(roomId, peerId);
        await controlOk(hub, 'transport.connect', { roomId, peerId, transportId: t.send, dtlsParameters: clientDtlsParameters() });
        const p = await controlOk(hub, 'produce', { roomId, peerId, transportId: t.send, kind: 'audio', rtpParameters: audioRtpParameters(1000 + i) });
        // A second peer consuming it, then both go; every other cycle the
        // second peer leaves first, so both close orders are covered.
        const other = `watcher:${i}`;
        const w = await joinWithTransports(roomId, other);
        await controlOk(hub, 'consume', { roomId, peerId: other, transportId: w.recv, producerId: p.producerId, rtpCapabilities: deviceRtpCapabilities() });
        const [first, second] = i % 2 ? [other, peerId] : [peerId, other];
        await controlOk(hub, 'peer.leave', { roomId, peerId: first });
        await controlOk(hub, 'peer.leave', { roomId, peerId: second });
      }
      // A peer that joins again starts over rather than piling up transports.
      await joinWithTransports(roomId, 'rejoiner:1');
      await joinWithTransports(roomId, 'rejoiner:1');
      expect(node.room(roomId)!.participant('rejoiner:1').counts.transports).to.equal(2);
      await controlOk(hub, 'peer.leave', { roomId, peerId: 'rejoiner:1' });

      const after = await dumpTotals(node);
      expect(after).to.deep.equal(before);
      expect(after.transports + after.producers + after.consumers).to.equal(0);

      await controlOk(hub, 'room.close', { roomId });
      const closed = await dumpTotals(node);
      expect(closed.routers).to.equal(before.routers - 1);
      for (const entry of node.pool.workers) {
        const routers = [...entry.worker.routersForTesting].filter((r) => (r.appData as { roomId?: string }).roomId === roomId);
        expect(routers, 'no router left for the closed room').to.have.length(0);
      }
      // The pool's live counters agree with mediasoup's dumps.
      const counted = node.counts();
      expect({ routers: counted.routers, transports: counted.transports, producers: counted.producers, consumers: counted.consumers }).to.deep.equal(closed);
    });
  });

  describe('recording guard', () => {
    it('closes a PlainTransport or DirectTransport created on one of our routers and reports it', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      const router = node.room(roomId)!.routers[0] as ms.Router;
      const refusedBefore = node.guard.refusedCount;

      const plain = await router.createPlainTransport({ listenIp: '127.0.0.1' });
      expect(plain.closed, 'plain transport closed at once').to.equal(true);
      const direct = await router.createDirectTransport();
      expect(direct.closed, 'direct transport closed at once').to.equal(true);
      // A pipe transport not made by the room's own piping is refused too,
      // and so is a WebRtcTransport that no participant asked for.
      const pipe = await router.createPipeTransport({ listenIp: '127.0.0.1' });
      expect(pipe.closed).to.equal(true);
      const { webRtcServer } = node.room(roomId)!.workers[0]!;
      const rogue = await router.createWebRtcTransport({ webRtcServer });
      expect(rogue.closed).to.equal(true);
      // A forged permit-shaped appData is not a permit.
      const forged = await router.createWebRtcTransport({ webRtcServer, appData: { nodeId: node.nodeId, roomId, peerId: 'x:y', direction: 'recv' } });
      expect(forged.closed).to.equal(true);

      expect(node.guard.refusedCount - refusedBefore).to.equal(5);
      const metrics = await (await fetch(`${node.controlUrl}/metrics`)).text();
      expect(metrics).to.match(/relay_recording_guard_refusals_total\{what="transport",type="PlainTransport",node="node-a"\} 1/);
      expect(metrics).to.match(/relay_recording_guard_refusals_total\{what="transport",type="DirectTransport",node="node-a"\} 1/);
      const dump = (await router.dump()) as { transportIds: string[] };
      expect(dump.transportIds).to.have.length(0);

      // Consuming a real producer of this router through the closed DirectTransport
      // is refused; the same request through a participant's transport works, so
      // only the guard stands between the track and this process.
      const singer = await joinWithTransports(roomId, 'singer:1');
      const audio = await controlOk(hub, 'produce', { roomId, peerId: 'singer:1', transportId: singer.send, kind: 'audio', rtpParameters: audioRtpParameters() });
      expect(node.room(roomId)!.routers, 'the producer lives on the router the DirectTransport was made on').to.deep.equal([router]);
      const tapped = await direct.consume({ producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() as ms.RtpCapabilities })
        .then((c) => c, (err: unknown) => err as Error);
      expect(tapped, 'consume through the closed DirectTransport').to.be.instanceOf(Error);
      const listener = await joinWithTransports(roomId, 'listener:1');
      await controlOk(hub, 'consume', { roomId, peerId: 'listener:1', transportId: listener.recv, producerId: audio.producerId, rtpCapabilities: deviceRtpCapabilities() });
      const after = (await router.dump()) as { mapProducerIdConsumerIds: Record<string, string[]> };
      expect(after.mapProducerIdConsumerIds[audio.producerId], 'the listener\'s consumer only').to.have.length(1);
      await controlOk(hub, 'room.close', { roomId });
    });
  });

  describe('capacity', () => {
    it('puts participants on another worker once the room\'s worker is full and pipes media across', async function () {
      // A node whose workers each carry one consumer.
      const small = await startTestRelay(redis.url, { RELAY_ID: 'node-small', RELAY_WORKERS: '2', RELAY_CONSUMERS_PER_WORKER: '1' });
      const link = await connectControl(small.controlUrl);
      const refusedBefore = small.guard.refusedCount;
      try {
        const roomId = 'overflow';
        await controlOk(link, 'room.ensure', { roomId });
        const join = async (peerId: string) => {
          await controlOk(link, 'peer.join', { roomId, peerId });
          const send = await controlOk(link, 'transport.create', { roomId, peerId, direction: 'send' });
          const recv = await controlOk(link, 'transport.create', { roomId, peerId, direction: 'recv' });
          return { send: send.id, recv: recv.id };
        };
        const a = await join('a:1');
        const b = await join('b:1');
        const pa = await controlOk(link, 'produce', { roomId, peerId: 'a:1', transportId: a.send, kind: 'audio', rtpParameters: audioRtpParameters(1) });
        // b consumes a: the first worker is now full.
        await controlOk(link, 'consume', { roomId, peerId: 'b:1', transportId: b.recv, producerId: pa.producerId, rtpCapabilities: deviceRtpCapabilities() });
        const c = await join('c:1');
        const room = small.room(roomId)!;
        expect(room.routers, 'a second router on the other worker').to.have.length(2);
        expect(new Set(room.workers.map((w) => w.index)).size).to.equal(2);
        // c (on worker 2) consumes a (on worker 1) through a pipe; a consumes c's audio the other way.
        const consumed = await controlOk(link, 'consume', { roomId, peerId: 'c:1', transportId: c.recv, producerId: pa.producerId, rtpCapabilities: deviceRtpCapabilities() });
        expect(consumed.producerId).to.equal(pa.producerId);
        const pc = await controlOk(link, 'produce', { roomId, peerId: 'c:1', transportId: c.send, kind: 'audio', rtpParameters: audioRtpParameters(3) });
        await controlOk(link, 'consume', { roomId, peerId: 'a:1', transportId: a.recv, producerId: pc.producerId, rtpCapabilities: deviceRtpCapabilities() });
        const pipes = await Promise.all(room.routers.map(async (r) => ((await r.dump()) as { transportIds: string[] }).transportIds.length));
        // Each router: its participants' transports plus one pipe end.
        expect(pipes).to.deep.equal([5, 3]);
        expect(small.guard.refusedCount, 'our own pipes pass the guard').to.equal(refusedBefore);

        // c leaving empties the overflow router, which closes with its pipe.
        const closed = nextNotice(link, 'consumer.closed', (p) => p.producerId === pc.producerId);
        await controlOk(link, 'peer.leave', { roomId, peerId: 'c:1' });
        expect((await closed).peerId).to.equal('a:1');
        expect(room.routers).to.have.length(1);
        const mainDump = (await room.routers[0]!.dump()) as { transportIds: string[] };
        expect(mainDump.transportIds).to.have.length(4);
      } finally {
        link.close();
        await small.close();
      }
    });

    it('closes a transport that never connects and tells the hub', async () => {
      const quick = await startTestRelay(redis.url, { RELAY_ID: 'node-quick', RELAY_TRANSPORT_CONNECT_TIMEOUT_MS: '300', RELAY_ROOM_IDLE_TIMEOUT_MS: '400' });
      const link = await connectControl(quick.controlUrl);
      try {
        await controlOk(link, 'room.ensure', { roomId: 'r1' });
        await controlOk(link, 'peer.join', { roomId: 'r1', peerId: 'p:1' });
        const closed = nextNotice(link, 'transport.closed');
        const t = await controlOk(link, 'transport.create', { roomId: 'r1', peerId: 'p:1', direction: 'send' });
        expect(await closed).to.deep.equal({ roomId: 'r1', peerId: 'p:1', transportId: t.id, reason: 'connect_timeout' });
        expectCode(await control(link, 'transport.connect', { roomId: 'r1', peerId: 'p:1', transportId: t.id, dtlsParameters: clientDtlsParameters() }), 'TRANSPORT_NOT_FOUND');
        // The peer leaves; the empty room closes itself after the idle timeout.
        const idle = nextNotice(link, 'room.closed');
        await controlOk(link, 'peer.leave', { roomId: 'r1', peerId: 'p:1' });
        expect(await idle).to.deep.equal({ roomId: 'r1', reason: 'idle' });
        expect(quick.room('r1')).to.equal(undefined);
        expect((await dumpTotals(quick)).routers).to.equal(0);
      } finally {
        link.close();
        await quick.close();
      }
    });
  });

  describe('worker death', () => {
    it('replaces a killed worker, reports its rooms as lost, and serves new rooms', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      const room = node.room(roomId)!;
      const victim = room.workers[0]!;
      // Another room, on the other worker, must survive.
      let survivorId = '';
      for (let i = 0; i < 4 && !survivorId; i++) {
        const id = newRoomId();
        await controlOk(hub, 'room.ensure', { roomId: id });
        if (node.room(id)!.workers[0] !== victim) survivorId = id;
      }
      expect(survivorId, 'a room on the other worker').to.not.equal('');
      await joinWithTransports(roomId, 'doomed:1');

      const lost = nextNotice(hub, 'rooms.lost');
      const replaced = new Promise<void>((resolve) => node.pool.once('replaced', () => resolve()));
      process.kill(victim.worker.pid, 'SIGKILL');
      const notice = await lost;
      expect(notice.reason).to.equal('worker_died');
      expect(notice.roomIds).to.include(roomId);
      expect(notice.roomIds).to.not.include(survivorId);
      expect(node.room(roomId)).to.equal(undefined);
      expect(node.room(survivorId)).to.not.equal(undefined);
      expectCode(await control(hub, 'peer.join', { roomId, peerId: 'doomed:1' }), 'ROOM_NOT_FOUND');

      await replaced;
      expect(node.pool.workers).to.have.length(2);
      expect(node.pool.workers.map((w) => w.worker.pid)).to.not.include(victim.worker.pid);
      // The lost room comes back on ensure, and works.
      expect((await controlOk(hub, 'room.ensure', { roomId })).created).to.equal(true);
      const t = await joinWithTransports(roomId, 'back:1');
      await controlOk(hub, 'produce', { roomId, peerId: 'back:1', transportId: t.send, kind: 'audio', rtpParameters: audioRtpParameters() });
      const metrics = await (await fetch(`${node.controlUrl}/metrics`)).text();
      expect(metrics).to.match(/relay_worker_deaths_total\{node="node-a"\} 1/);
    });
  });

  describe('drain', () => {
    it('takes no new rooms while draining, keeps existing ones working, and serves again after', async () => {
      const roomId = newRoomId();
      await controlOk(hub, 'room.ensure', { roomId });
      expect((await controlOk(hub, 'node.drain', { draining: true })).state).to.equal('draining');
      const client = redis.client();
      try {
        expect(JSON.parse((await client.get(relayRegistryKeys.node('node-a')))!).state).to.equal('draining');
      } finally {
        client.disconnect();
      }
      expectCode(await control(hub, 'room.ensure', { roomId: newRoomId() }), 'RELAY_UNAVAILABLE');
      expect((await controlOk(hub, 'room.ensure', { roomId })).created).to.equal(false);
      const t = await joinWithTransports(roomId, 'during-drain:1');
      await controlOk(hub, 'produce', { roomId, peerId: 'during-drain:1', transportId: t.send, kind: 'video', rtpParameters: videoRtpParameters() });
      expect((await controlOk(hub, 'node.drain', { draining: false })).state).to.equal('serving');
      expect((await controlOk(hub, 'room.ensure', { roomId: newRoomId() })).created).to.equal(true);
      const dump = await controlOk(hub, 'node.dump', {});
      expect(dump.state).to.equal('serving');
      expect(dump.counts.rooms).to.equal(node.roomIds.length);
    });
  });
});
