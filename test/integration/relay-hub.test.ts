import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import type { RelayServices } from '../../server/relay/registerRelay.js';
import type { RelayNode } from '../../relay/RelayNode.js';
import { AppError } from '../../shared/protocol/errors.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import { createUser, connectUser, type TestUser } from '../support/users.js';
import { Inbox, ack, errorCode, ok } from '../support/calls.js';
import {
  TEST_RELAY_SECRET,
  audioRtpParameters,
  clientDtlsParameters,
  connectControl,
  controlOk,
  deviceRtpCapabilities,
  eventually,
  startTestRelay,
  videoRtpParameters,
} from '../support/relay.js';

const ADMIN_TOKEN = 'relay-admin-token-0123456789';

describe('hub and relay nodes', function () {
  this.timeout(40_000);
  let redis: TestRedis;
  let nodeA: RelayNode;
  let nodeB: RelayNode;
  let hub: Hub;
  let relay: RelayServices;

  before(async () => {
    redis = await TestRedis.start();
    // Capacities are small so a test can give a node real load with a few consumers.
    nodeA = await startTestRelay(redis.url, { RELAY_ID: 'node-a', RELAY_CONSUMERS_PER_WORKER: '50' });
    nodeB = await startTestRelay(redis.url, { RELAY_ID: 'node-b', RELAY_CONSUMERS_PER_WORKER: '2' });
    hub = await startTestHub(redis.url, {
      RELAY_SECRET: TEST_RELAY_SECRET,
      RELAY_REQUIRED: 'true',
      RELAY_DIRECTORY_REFRESH_MS: '200',
      RELAY_REQUEST_TIMEOUT_MS: '3000',
      CALL_RECONNECT_GRACE_S: '1',
      ADMIN_TOKEN,
    });
    relay = hub.ctx.relay!;
    await eventually(() => relay.service.connectedNodes.length === 2, 'links to both nodes');
  });
  after(async () => {
    await hub?.close();
    await nodeA?.close();
    await nodeB?.close();
    await redis?.stop();
  });

  let seq = 0;
  const roomId = (prefix: string) => `${prefix}-${++seq}`;
  const node = (id: string | null) => (id === 'node-a' ? nodeA : id === 'node-b' ? nodeB : undefined);
  const admin = (method: string, path: string, token: string | null = ADMIN_TOKEN) =>
    fetch(`${hub.url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });

  describe('placement', () => {
    it('is ready once a relay node serves, and lists nodes with per-worker load for operators', async () => {
      const health = (await (await fetch(`${hub.url}/healthz`)).json()) as { ok: boolean; checks: Record<string, { ok: boolean; detail?: string }> };
      expect(health.checks.relay).to.deep.equal({ ok: true, detail: '2 serving relay node(s)' });
      expect((await admin('GET', '/admin/relays', null)).status).to.equal(401);
      const res = await admin('GET', '/admin/relays');
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { nodes: { nodeId: string; state: string; load: number; connected: boolean; workers: { cpu: number; consumers: number }[] }[] };
      expect(body.nodes.map((n) => n.nodeId)).to.deep.equal(['node-a', 'node-b']);
      for (const n of body.nodes) {
        expect(n.state).to.equal('serving');
        expect(n.connected).to.equal(true);
        expect(n.workers).to.have.length(1);
        expect(n.workers[0]).to.have.keys(['index', 'pid', 'cpu', 'routers', 'transports', 'producers', 'consumers', 'bitrateIn', 'bitrateOut', 'port']);
      }
    });

    /** A room directly on a node with one sender and `receivers` consumers: real load on that node. */
    async function loadNode(target: RelayNode, room: string, receivers: number): Promise<() => Promise<void>> {
      const link = await connectControl(target.controlUrl);
      await controlOk(link, 'room.ensure', { roomId: room });
      const transports = async (peerId: string) => {
        await controlOk(link, 'peer.join', { roomId: room, peerId });
        return {
          send: (await controlOk(link, 'transport.create', { roomId: room, peerId, direction: 'send' })).id,
          recv: (await controlOk(link, 'transport.create', { roomId: room, peerId, direction: 'recv' })).id,
        };
      };
      const sender = await transports('s:1');
      const p = await controlOk(link, 'produce', { roomId: room, peerId: 's:1', transportId: sender.send, kind: 'audio', rtpParameters: audioRtpParameters() });
      for (let i = 1; i <= receivers; i++) {
        const t = await transports(`r:${i}`);
        await controlOk(link, 'consume', { roomId: room, peerId: `r:${i}`, transportId: t.recv, producerId: p.producerId, rtpCapabilities: deviceRtpCapabilities() });
      }
      return async () => {
        await controlOk(link, 'room.close', { roomId: room }).catch(() => undefined);
        link.close();
      };
    }

    it('spreads a burst of new rooms over both nodes instead of herding onto the idlest', async () => {
      // Node A reports slightly more load (1 consumer of 50 = 0.02) than idle node B:
      // choosing by reports alone would send the whole burst to B.
      const unload = await loadNode(nodeA, 'slightly-busy', 1);
      await eventually(async () => ((await relay.service.directory.node('node-a'))?.load ?? 0) >= 0.02, 'node-a to report its load');
      const ids = Array.from({ length: 20 }, () => roomId('burst'));
      const opened = await Promise.all(ids.map((id) => relay.service.openRoom(id)));
      await unload();
      const perNode = new Map<string, number>();
      for (const o of opened) perNode.set(o.nodeId, (perNode.get(o.nodeId) ?? 0) + 1);
      expect(perNode.get('node-a') ?? 0, 'rooms on node-a').to.be.at.least(5);
      expect(perNode.get('node-b') ?? 0, 'rooms on node-b').to.be.at.least(5);
      // Every room exists where Redis says it lives, and the placement counters saw each one.
      for (const o of opened) expect(o.created).to.equal(true);
      for (const id of ids) {
        const nodeId = await relay.service.nodeOf(id);
        expect(node(nodeId)!.room(id), `room ${id} on ${nodeId}`).to.not.equal(undefined);
      }
      const client = redis.client();
      try {
        const placed = (await client.mget(keys.relayPlaced('node-a'), keys.relayPlaced('node-b'))).map(Number);
        expect(placed[0]! + placed[1]!).to.equal(20);
      } finally {
        client.disconnect();
      }
      // A room stays on its node.
      const again = await relay.service.openRoom(ids[0]!);
      expect(again.created).to.equal(false);
      expect(again.nodeId).to.equal(opened[0]!.nodeId);
      await Promise.all(ids.map((id) => relay.service.closeRoom(id)));
      expect(await relay.service.nodeOf(ids[0]!)).to.equal(null);
    });

    it('gives no new rooms to a node that reports high load', async () => {
      // Load node B for real: one sender, two receivers fill its worker.
      const unload = await loadNode(nodeB, 'busy', 2);
      try {
        await eventually(async () => ((await relay.service.directory.node('node-b'))?.load ?? 0) > 0.8, 'node-b to report its load');
        const ids = Array.from({ length: 12 }, () => roomId('loaded'));
        const opened = await Promise.all(ids.map((id) => relay.service.openRoom(id)));
        expect(opened.map((o) => o.nodeId)).to.deep.equal(ids.map(() => 'node-a'));
        await Promise.all(ids.map((id) => relay.service.closeRoom(id)));
      } finally {
        await unload();
      }
      await eventually(async () => ((await relay.service.directory.node('node-b'))?.load ?? 1) <= 0.8, 'node-b to report it is idle again');
    });

    it('drains a node on an operator\'s request: no new rooms there, existing rooms keep working', async () => {
      // A room on node A that must survive the drain.
      const kept = roomId('kept');
      await relay.service.directory.assign(kept, null, 'node-a');
      expect((await relay.service.openRoom(kept)).nodeId).to.equal('node-a');

      expect((await admin('POST', '/admin/relays/node-a/drain', null)).status).to.equal(401);
      expect((await admin('POST', '/admin/relays/node-a/drain', 'wrong-token-wrong-token')).status).to.equal(401);
      expect((await admin('POST', '/admin/relays/no-such-node/drain')).status).to.equal(404);
      const drained = await admin('POST', '/admin/relays/node-a/drain');
      expect(drained.status).to.equal(200);
      expect(await drained.json()).to.deep.include({ nodeId: 'node-a', state: 'draining' });
      await eventually(async () => (await relay.service.directory.node('node-a'))?.state === 'draining', 'registry to show the drain');

      const fresh = Array.from({ length: 8 }, () => roomId('during-drain'));
      const opened = await Promise.all(fresh.map((id) => relay.service.openRoom(id)));
      expect(opened.map((o) => o.nodeId)).to.deep.equal(fresh.map(() => 'node-b'));

      // The existing room goes on, on node A.
      const reopened = await relay.service.openRoom(kept);
      expect(reopened).to.deep.include({ nodeId: 'node-a', created: false });
      const joined = await relay.service.request(kept, 'peer.join', { peerId: 'u:d' });
      expect(joined.resumed).to.equal(false);
      await relay.service.request(kept, 'transport.create', { peerId: 'u:d', direction: 'send' });

      // A room mapped to node A that node A no longer has is placed elsewhere.
      await relay.service.request(kept, 'room.close', {});
      const moved = await relay.service.openRoom(kept);
      expect(moved).to.deep.include({ nodeId: 'node-b', created: true });
      expect(await relay.service.nodeOf(kept)).to.equal('node-b');

      const undrained = await admin('POST', '/admin/relays/node-a/undrain');
      expect(await undrained.json()).to.deep.include({ state: 'serving' });
      await eventually(async () => (await relay.service.directory.node('node-a'))?.state === 'serving', 'registry to show serving');
      await Promise.all([...fresh, kept].map((id) => relay.service.closeRoom(id)));
    });

    it('refuses a room when no node serves, and the readiness check says so', async () => {
      await relay.service.drain('node-a', true);
      await relay.service.drain('node-b', true);
      try {
        await eventually(async () => (await relay.service.nodes()).every((n) => n.state === 'draining'), 'both draining');
        const err = await relay.service.openRoom(roomId('nowhere')).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(AppError);
        expect((err as AppError).code).to.equal('RELAY_UNAVAILABLE');
        const health = await fetch(`${hub.url}/healthz`);
        expect(health.status).to.equal(503);
      } finally {
        await relay.service.drain('node-a', false);
        await relay.service.drain('node-b', false);
      }
    });
  });

  describe('client media signaling', () => {
    let alice: TestUser;
    let bob: TestUser;
    let mallory: TestUser;
    let aliceSocket: ClientSocket;
    let bobSocket: ClientSocket;
    let mallorySocket: ClientSocket;

    before(async () => {
      alice = await createUser(hub);
      bob = await createUser(hub);
      mallory = await createUser(hub);
      aliceSocket = await connectUser(hub, alice);
      bobSocket = await connectUser(hub, bob);
      mallorySocket = await connectUser(hub, mallory);
    });
    after(() => {
      aliceSocket?.close();
      bobSocket?.close();
      mallorySocket?.close();
    });

    it('forwards signaling for members only, keeps ids per device, and relays notices', async () => {
      const room = roomId('conf');
      await relay.membership.add(room, alice.userId, alice.deviceId);
      await relay.membership.add(room, bob.userId, bob.deviceId);
      const bobInbox = new Inbox(bobSocket);
      const aliceInbox = new Inbox(aliceSocket);

      expect(await errorCode(mallorySocket, 'media:join', { roomId: room })).to.equal('NOT_IN_ROOM');
      expect(await errorCode(mallorySocket, 'media:capabilities', { roomId: room })).to.equal('NOT_IN_ROOM');

      const caps = await ok<{ rtpCapabilities: { codecs: { mimeType: string }[] } }>(aliceSocket, 'media:capabilities', { roomId: room });
      expect(caps.rtpCapabilities.codecs.map((c) => c.mimeType)).to.include('audio/opus');
      const aj = await ok<{ producers: unknown[]; resumed: boolean }>(aliceSocket, 'media:join', { roomId: room });
      expect(aj).to.deep.include({ producers: [], resumed: false });
      await ok(bobSocket, 'media:join', { roomId: room });

      const send = await ok<{ id: string; iceCandidates: unknown[] }>(aliceSocket, 'media:transport-create', { roomId: room, direction: 'send' });
      expect(send.iceCandidates.length).to.equal(2);
      await ok(aliceSocket, 'media:transport-connect', { roomId: room, transportId: send.id, dtlsParameters: clientDtlsParameters() });
      const added = bobInbox.next('media:producer-added');
      const produced = await ok<{ producerId: string }>(aliceSocket, 'media:produce', { roomId: room, transportId: send.id, kind: 'audio', rtpParameters: audioRtpParameters(), appData: { source: 'mic' } });
      expect(await added).to.deep.equal({
        roomId: room, peerId: `${alice.userId}:${alice.deviceId}`, userId: alice.userId, producerId: produced.producerId, kind: 'audio', paused: false, appData: { source: 'mic' },
      });

      // Bob cannot use Alice's transport, nor pass junk.
      expect(await errorCode(bobSocket, 'media:produce', { roomId: room, transportId: send.id, kind: 'audio', rtpParameters: audioRtpParameters(5) })).to.equal('TRANSPORT_NOT_FOUND');
      expect(await errorCode(bobSocket, 'media:producer-close', { roomId: room, producerId: produced.producerId })).to.equal('PRODUCER_NOT_FOUND');
      expect(await errorCode(bobSocket, 'media:transport-create', { roomId: room, direction: 'sideways' })).to.equal('VALIDATION_FAILED');
      expect(await errorCode(bobSocket, 'media:consume', { roomId: room, transportId: send.id, producerId: produced.producerId, rtpCapabilities: deviceRtpCapabilities(), sneaky: 1 })).to.equal('VALIDATION_FAILED');
      // Mallory, not a member, cannot touch the room even with valid ids.
      expect(await errorCode(mallorySocket, 'media:producer-pause', { roomId: room, producerId: produced.producerId })).to.equal('NOT_IN_ROOM');

      const recv = await ok<{ id: string }>(bobSocket, 'media:transport-create', { roomId: room, direction: 'recv' });
      const consumed = await ok<{ consumerId: string; kind: string; rtpParameters: { codecs: unknown[] } }>(bobSocket, 'media:consume', {
        roomId: room, transportId: recv.id, producerId: produced.producerId, rtpCapabilities: deviceRtpCapabilities(),
      });
      expect(consumed.kind).to.equal('audio');
      await ok(bobSocket, 'media:consumer-resume', { roomId: room, consumerId: consumed.consumerId });

      const paused = bobInbox.next('media:producer-paused');
      await ok(aliceSocket, 'media:producer-pause', { roomId: room, producerId: produced.producerId });
      expect(await paused).to.deep.include({ userId: alice.userId, producerId: produced.producerId, paused: true });
      // The host's way: unmute (then mute) every audio track of a user; the owner hears of it too.
      const unmutedForAlice = new Inbox(aliceSocket).next('media:producer-paused');
      expect(await relay.media.setTracksPaused(room, alice.userId, false, 'audio')).to.equal(1);
      expect(await unmutedForAlice).to.deep.include({ producerId: produced.producerId, paused: false });
      expect(await relay.media.setTracksPaused(room, alice.userId, false, 'audio')).to.equal(0);
      expect(await relay.media.setTracksPaused(room, bob.userId, true)).to.equal(0);
      // Bounded input: too many codecs is refused before it reaches the relay.
      const bloated = { ...audioRtpParameters(6), codecs: Array.from({ length: 17 }, (_, i) => ({ mimeType: 'audio/opus', payloadType: 100 + i, clockRate: 48000, channels: 2 })) };
      expect(await errorCode(aliceSocket, 'media:produce', { roomId: room, transportId: send.id, kind: 'audio', rtpParameters: bloated })).to.equal('VALIDATION_FAILED');

      const consumerClosed = bobInbox.next('media:consumer-closed');
      const producerClosed = bobInbox.next('media:producer-closed');
      await ok(aliceSocket, 'media:producer-close', { roomId: room, producerId: produced.producerId });
      expect(await consumerClosed).to.deep.equal({ roomId: room, consumerId: consumed.consumerId, producerId: produced.producerId });
      expect(await producerClosed).to.deep.include({ producerId: produced.producerId, kind: 'audio' });
      // Alice is not told about her own track coming and going.
      expect(aliceInbox.events.filter((e) => e.event === 'media:producer-added' || e.event === 'media:producer-closed')).to.deep.equal([]);

      // The owner takes Bob out: his requests stop, his peer leaves the relay.
      const relayNode = node(await relay.service.nodeOf(room))!;
      expect(relayNode.room(room)!.peerCount).to.equal(2);
      await relay.media.removePeer(room, bob.userId, bob.deviceId);
      expect(relayNode.room(room)!.peerCount).to.equal(1);
      expect(await errorCode(bobSocket, 'media:transport-create', { roomId: room, direction: 'recv' })).to.equal('NOT_IN_ROOM');

      await ok(aliceSocket, 'media:leave', { roomId: room });
      await ok(aliceSocket, 'media:leave', { roomId: room });
      expect(relayNode.room(room)!.peerCount).to.equal(0);
      await relay.media.closeRoom(room);
      expect(relayNode.room(room)).to.equal(undefined);
      expect(await relay.membership.members(room)).to.deep.equal([]);
      expect(await errorCode(aliceSocket, 'media:join', { roomId: room })).to.equal('NOT_IN_ROOM');
    });

    it('tells a device that joins after the active speaker was picked who speaks, in the media:join reply', async () => {
      // Real speech detection needs real RTP (only a browser sends it: test/e2e/conference.test.ts). Here the
      // relay Room's speaker path is called as its ActiveSpeakerObserver calls it; the rest is the real chain:
      // relay room state -> control protocol -> hub -> client reply.
      const carol = await createUser(hub);
      const carolSocket = await connectUser(hub, carol);
      try {
        const room = roomId('speaker');
        for (const u of [alice, bob, carol]) await relay.membership.add(room, u.userId, u.deviceId);
        const alicePeer = `${alice.userId}:${alice.deviceId}`;
        const first = await ok<{ activeSpeaker: unknown }>(aliceSocket, 'media:join', { roomId: room });
        expect(first.activeSpeaker, 'nobody spoke yet').to.equal(null);
        await ok(bobSocket, 'media:join', { roomId: room });
        const send = await ok<{ id: string }>(aliceSocket, 'media:transport-create', { roomId: room, direction: 'send' });
        const { producerId } = await ok<{ producerId: string }>(aliceSocket, 'media:produce', { roomId: room, transportId: send.id, kind: 'audio', rtpParameters: audioRtpParameters(7) });
        const video = await ok<{ producerId: string }>(aliceSocket, 'media:produce', { roomId: room, transportId: send.id, kind: 'video', rtpParameters: videoRtpParameters(8) });

        const relayRoom = node(await relay.service.nodeOf(room))!.room(room)!;
        const announced = new Inbox(bobSocket).next('media:active-speaker');
        relayRoom.setActiveSpeaker(producerId);
        // Devices in the room hear the change...
        expect(await announced).to.deep.equal({ roomId: room, peerId: alicePeer, userId: alice.userId });
        // ...and one joining later, with no further change, is told in its join reply.
        const late = await ok<{ activeSpeaker: unknown }>(carolSocket, 'media:join', { roomId: room });
        expect(late.activeSpeaker).to.deep.equal({ peerId: alicePeer, userId: alice.userId });
        expect((await relay.service.request(room, 'room.producers', {})).activeSpeaker).to.deep.equal({ peerId: alicePeer, producerId });
        // A resumed join says it too (changes may have been missed while the socket was away).
        const resumed = await ok<{ resumed: boolean; activeSpeaker: unknown }>(carolSocket, 'media:join', { roomId: room, resume: true });
        expect(resumed).to.deep.include({ resumed: true, activeSpeaker: { peerId: alicePeer, userId: alice.userId } });

        // Not a speaker: unknown ids and video tracks change nothing.
        relayRoom.setActiveSpeaker('no-such-producer');
        relayRoom.setActiveSpeaker(video.producerId);
        expect((await ok<{ activeSpeaker: unknown }>(carolSocket, 'media:join', { roomId: room })).activeSpeaker).to.deep.equal({ peerId: alicePeer, userId: alice.userId });

        // Once the speaker's track ends there is no current speaker to report.
        await ok(aliceSocket, 'media:producer-close', { roomId: room, producerId });
        expect((await ok<{ activeSpeaker: unknown }>(carolSocket, 'media:join', { roomId: room })).activeSpeaker).to.equal(null);
        expect((await relay.service.request(room, 'room.producers', {})).activeSpeaker).to.equal(null);
        await relay.media.closeRoom(room);
      } finally {
        carolSocket.close();
      }
    });

    it('tells clients to rejoin when the room\'s worker dies, and the rejoin works', async () => {
      const room = roomId('lost');
      await relay.membership.add(room, alice.userId, alice.deviceId);
      await relay.membership.add(room, bob.userId, bob.deviceId);
      await ok(aliceSocket, 'media:join', { roomId: room });
      await ok(bobSocket, 'media:join', { roomId: room });
      const relayNode = node(await relay.service.nodeOf(room))!;
      const worker = relayNode.room(room)!.workers[0]!;

      const aliceLost = new Inbox(aliceSocket).next('media:room-lost');
      const bobLost = new Inbox(bobSocket).next('media:room-lost');
      process.kill(worker.worker.pid, 'SIGKILL');
      expect(await aliceLost).to.deep.equal({ roomId: room, reason: 'worker_died', action: 'rejoin' });
      expect(await bobLost).to.deep.equal({ roomId: room, reason: 'worker_died', action: 'rejoin' });
      // Rejoining recreates the room (on a replacement worker or another node).
      const rejoined = await eventually(async () => {
        const res = await ack(aliceSocket, 'media:join', { roomId: room });
        return res.ok ? res : undefined;
      }, 'rejoin after worker death');
      expect(rejoined).to.deep.include({ resumed: false });
      const t = await ok<{ id: string }>(aliceSocket, 'media:transport-create', { roomId: room, direction: 'send' });
      await ok(aliceSocket, 'media:produce', { roomId: room, transportId: t.id, kind: 'audio', rtpParameters: audioRtpParameters() });
      await relay.media.closeRoom(room);
    });

    it('keeps a device\'s media across a socket reconnect with resume, and removes a device that does not come back', async () => {
      const room = roomId('reconnect');
      await relay.membership.add(room, alice.userId, alice.deviceId);
      const first = await connectUser(hub, alice);
      await ok(first, 'media:join', { roomId: room });
      const t = await ok<{ id: string }>(first, 'media:transport-create', { roomId: room, direction: 'send' });
      first.close();
      // Back within the grace period: resume keeps the transport.
      const second = await connectUser(hub, alice);
      const resumed = await ok<{ resumed: boolean }>(second, 'media:join', { roomId: room, resume: true });
      expect(resumed.resumed).to.equal(true);
      await ok(second, 'media:transport-connect', { roomId: room, transportId: t.id, dtlsParameters: clientDtlsParameters() });
      const relayNode = node(await relay.service.nodeOf(room))!;
      // Gone for good: after the grace period the peer leaves the relay.
      second.close();
      await eventually(() => relayNode.room(room)?.peerCount === 0, 'the departed device to leave the relay room');
      await relay.media.closeRoom(room);
    });
  });
});
