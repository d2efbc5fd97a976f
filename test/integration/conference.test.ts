import { expect } from 'chai';
import { Hub } from '../../server/Hub.js';
import type { RelayServices } from '../../server/relay/registerRelay.js';
import type { RelayNode } from '../../relay/RelayNode.js';
import type { CallEndedFact } from '../../server/calls/CallEndedFact.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import type { Redis } from 'ioredis';
import { keys } from '../../server/keys.js';
import { newConferenceId } from '../../server/conference/Conference.js';
import { ConferenceStore, FACTS_RETENTION_MS } from '../../server/conference/ConferenceStore.js';
import { createLogger } from '../../shared/runtime/log.js';
import { testHubConfig, testHubEnv } from '../support/config.js';
import { addDevice, createUser, type TestUser } from '../support/users.js';
import { FactLog, ack, errorCode, fakeSdp, ok, sleep } from '../support/calls.js';
import { about, connectDevice, received, sendAudio, waitFor, type Device } from '../support/conference.js';
import {
  TEST_RELAY_SECRET, clientDtlsParameters, deviceRtpCapabilities, eventually, startTestRelay,
} from '../support/relay.js';

interface Participant { userId: string; displayName: string | null; host: boolean; joinedAt: number; connection: string; audio: string; video: string }
interface Invitee { userId: string; invitedBy: string; invitedAt: number; expiresAt: number }
interface View {
  conferenceId: string; roomId: string; state: string; hostId: string; role: string; thisDevice: boolean; maxParticipants: number;
  participants: Participant[]; invited: Invitee[]; endedAt: number | null; endReason: string | null;
}
interface Joined { conferenceId: string; roomId: string; conference: View; invited?: string[] }

const MAX = 4;

describe('conferences', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let relayNode: RelayNode;
  let hub: Hub;
  let hubB: Hub;
  let relay: RelayServices;
  let facts: FactLog;
  let factsB: FactLog;
  const open: ClientSocket[] = [];

  before(async () => {
    redis = await TestRedis.start();
    relayNode = await startTestRelay(redis.url, { RELAY_ID: 'conf-node' });
    // Both hub processes share the token and identity keys, as a deployment does.
    const shared = testHubEnv(redis.url);
    const env = {
      JWT_KEYS: shared.JWT_KEYS!,
      IDENTITY_HMAC_KEYS: shared.IDENTITY_HMAC_KEYS!,
      RELAY_SECRET: TEST_RELAY_SECRET,
      RELAY_DIRECTORY_REFRESH_MS: '200',
      RELAY_REQUEST_TIMEOUT_MS: '3000',
      CONFERENCE_MAX_PARTICIPANTS: String(MAX),
      CALL_RING_TIMEOUT_S: '3',
      CALL_RECONNECT_GRACE_S: '1',
      CALL_FINAL_REPORT_S: '0',
    };
    hub = await startTestHub(redis.url, env);
    hubB = await startTestHub(redis.url, env);
    relay = hub.ctx.relay!;
    facts = new FactLog(hub);
    factsB = new FactLog(hubB);
    await eventually(() => relay.service.connectedNodes.length === 1 && hubB.ctx.relay!.service.connectedNodes.length === 1, 'links to the relay node');
  });
  after(async () => {
    for (const s of open.splice(0)) s.close();
    await hub?.close();
    await hubB?.close();
    await relayNode?.close();
    await redis?.stop();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  const newUser = async (name?: string, on: Hub = hub): Promise<Device> => connectDevice(on, await createUser(hub, name ? { displayName: name } : {}), open);
  const otherDevice = async (d: Device, on: Hub = hub): Promise<Device> => connectDevice(on, await addDevice(hub, d.user), open);
  const reconnect = (user: TestUser, on: Hub = hub): Promise<Device> => connectDevice(on, user, open);
  const create = (d: Device, payload: Record<string, unknown> = {}) => ok<Joined>(d.socket, 'conference:create', payload);
  const join = (d: Device, conferenceId: string) => ok<Joined>(d.socket, 'conference:join', { conferenceId });
  const state = async (d: Device, conferenceId: string) => (await ok<{ conference: View }>(d.socket, 'conference:state', { conferenceId })).conference;
  /** Every fact about an id, from both hubs. */
  const factsOf = (id: string): CallEndedFact[] => [...facts.of(id), ...factsB.of(id)];
  async function factOf(id: string): Promise<CallEndedFact> {
    return eventually(() => factsOf(id)[0], `the fact of ${id}`);
  }
  /** The leg fact of a user in a conference. */
  async function legOf(conferenceId: string, userId: string, nth = 0): Promise<CallEndedFact> {
    return eventually(() => [...facts.facts, ...factsB.facts]
      .filter((f) => f.kind === 'conference-leg' && f.parentId === conferenceId && f.parties[0]?.userId === userId)[nth], 'a leg fact');
  }

  describe('invitations', () => {
    it('rings invitees with the inviter\'s verified identity on every device; one device accepts by joining', async () => {
      const alice = await newUser('Alice');
      const bob = await newUser('Bob');
      const bob2 = await otherDevice(bob);
      const carol = await newUser('Carol');
      const created = await create(alice, { invite: [{ userId: bob.user.userId }, { phone: carol.user.phone }], video: true });
      const id = created.conferenceId;
      expect(created.roomId).to.equal(id);
      expect(created.invited).to.deep.equal([bob.user.userId, carol.user.userId]);
      expect(created.conference).to.include({ state: 'active', hostId: alice.user.userId, role: 'host', thisDevice: true, maxParticipants: MAX });
      expect(created.conference.participants.map((p) => [p.userId, p.host, p.connection, p.audio])).to.deep.equal([[alice.user.userId, true, 'online', 'off']]);
      expect(created.conference.invited.map((i) => [i.userId, i.invitedBy])).to.have.deep.members([[bob.user.userId, alice.user.userId], [carol.user.userId, alice.user.userId]]);

      for (const d of [bob, bob2, carol]) {
        const incoming = await waitFor<{ inviter: unknown; hostId: string; video: boolean; participantCount: number; expiresAt: number }>(d, 'conference:incoming', about(id));
        expect(incoming.inviter).to.deep.equal({ userId: alice.user.userId, phone: alice.user.phone, displayName: 'Alice' });
        expect(incoming).to.include({ hostId: alice.user.userId, video: true, participantCount: 1 });
        expect(incoming.expiresAt).to.be.greaterThan(Date.now());
      }
      // A device coming online while the invitation rings is rung too.
      const bob3 = await otherDevice(bob);
      await waitFor(bob3, 'conference:incoming', about(id));
      expect((await state(bob, id)).role).to.equal('invited');

      const joined = await join(bob, id);
      expect(joined.conference.participants.map((p) => p.userId)).to.deep.equal([alice.user.userId, bob.user.userId]);
      expect(joined.conference).to.include({ role: 'participant', thisDevice: true });
      const announced = await waitFor<{ participant: Participant }>(alice, 'conference:participant-joined', about(id));
      expect(announced.participant).to.include({ userId: bob.user.userId, displayName: 'Bob', host: false, connection: 'online' });
      // Members never learn each other's numbers from a conference.
      expect(JSON.stringify(announced)).not.to.contain(bob.user.phone);
      expect(await waitFor(bob2, 'conference:invite-ended', about(id))).to.deep.equal({ conferenceId: id, userId: bob.user.userId, reason: 'joined' });
      const list = await waitFor<{ participants: Participant[]; invited: Invitee[] }>(alice, 'conference:participants', (p) => p.conferenceId === id && (p.participants as unknown[]).length === 2);
      expect(list.invited.map((i) => i.userId)).to.deep.equal([carol.user.userId]);
      expect(received(bob, 'conference:participant-joined', id), 'no self announcement').to.deep.equal([]);

      // Bob's media is open on the device that joined, and on no other.
      await ok(bob.socket, 'media:join', { roomId: id });
      expect(await errorCode(bob2.socket, 'media:join', { roomId: id })).to.equal('NOT_IN_ROOM');
      expect((await state(bob2, id)).thisDevice).to.equal(false);

      // Carol declines: she stops ringing, Alice hears it; she may still join later.
      await ok(carol.socket, 'conference:decline', { conferenceId: id });
      expect(await waitFor(carol, 'conference:invite-ended', about(id))).to.deep.include({ userId: carol.user.userId, reason: 'declined' });
      expect(await waitFor(alice, 'conference:invite-ended', (p) => p.conferenceId === id && p.reason === 'declined')).to.deep.include({ userId: carol.user.userId });
      expect((await state(carol, id)).invited).to.deep.equal([]);
      expect((await ok<{ conferences: View[] }>(carol.socket, 'conference:list', {})).conferences).to.deep.equal([]);
      await ok(carol.socket, 'conference:decline', { conferenceId: id }); // idempotent
      await join(carol, id);
      expect((await state(alice, id)).participants.map((p) => p.userId)).to.deep.equal([alice.user.userId, bob.user.userId, carol.user.userId]);
      const listed = await ok<{ conferences: View[] }>(bob.socket, 'conference:list', {});
      expect(listed.conferences.map((c) => c.conferenceId)).to.deep.equal([id]);
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });

    it('stops ringing after the ring timeout, and tells the inviter', async () => {
      const alice = await newUser();
      const dave = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: dave.user.userId }] });
      await waitFor(dave, 'conference:incoming', about(id));
      expect(await waitFor(dave, 'conference:invite-ended', about(id), 6000)).to.deep.equal({ conferenceId: id, userId: dave.user.userId, reason: 'timeout' });
      expect(await waitFor(alice, 'conference:invite-ended', about(id))).to.deep.include({ reason: 'timeout' });
      expect((await state(alice, id)).invited).to.deep.equal([]);
      expect(received(dave, 'conference:invite-ended', id)).to.have.length(1);
      // Invited once, Dave may still join while it runs.
      await join(dave, id);
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });

    it('refuses strangers exactly as a conference that does not exist', async () => {
      const alice = await newUser();
      const mallory = await newUser();
      const { conferenceId: id } = await create(alice);
      const missing = 'fDoesNotExist0000000';
      for (const [event, payload] of [
        ['conference:join', { conferenceId: id }],
        ['conference:state', { conferenceId: id }],
        ['conference:leave', { conferenceId: id }],
        ['conference:decline', { conferenceId: id }],
        ['conference:invite', { conferenceId: id, invite: [{ userId: alice.user.userId }] }],
        ['conference:end', { conferenceId: id }],
        ['conference:mute', { conferenceId: id, userId: alice.user.userId }],
        ['conference:remove', { conferenceId: id, userId: alice.user.userId }],
      ] as const) {
        const real = await ack(mallory.socket, event, payload);
        const none = await ack(mallory.socket, event, { ...payload, conferenceId: missing });
        expect(real, event).to.deep.equal({ ok: false, error: { code: 'ROOM_NOT_FOUND', message: 'No such room' } });
        expect(none, event).to.deep.equal(real);
      }
      expect(await errorCode(mallory.socket, 'media:join', { roomId: id })).to.equal('NOT_IN_ROOM');
      expect(received(alice, 'conference:participants', id)).to.deep.equal([]);
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });
  });

  describe('leaving and ending', () => {
    it('announces leaves, hands the host role on, ends for all, and records each leg and the conference once with its times', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const carol = await newUser('Carol', hubB); // on the other hub process
      const t0 = Date.now();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }, { userId: carol.user.userId }], client: { platform: 'web', appVersion: '1.2.0' } });
      await join(bob, id);
      await waitFor(carol, 'conference:incoming', about(id));
      await ok(carol.socket, 'conference:join', { conferenceId: id, client: { platform: 'android', appVersion: '3.1.0' } });
      await waitFor(alice, 'conference:participant-joined', (p) => p.conferenceId === id && (p.participant as Participant).userId === carol.user.userId);
      const joinedAt = new Map((await state(alice, id)).participants.map((p) => [p.userId, p.joinedAt]));
      await sendAudio(bob, id);

      await ok(bob.socket, 'conference:leave', { conferenceId: id });
      for (const d of [alice, carol]) {
        expect(await waitFor(d, 'conference:participant-left', about(id))).to.deep.equal({ conferenceId: id, userId: bob.user.userId, reason: 'left' });
      }
      expect(await errorCode(bob.socket, 'media:transport-create', { roomId: id, direction: 'recv' })).to.equal('NOT_IN_ROOM');
      expect(await errorCode(bob.socket, 'conference:leave', { conferenceId: id })).to.equal('NOT_IN_ROOM');
      const bobLeg = await legOf(id, bob.user.userId);
      expect(bobLeg).to.include({ kind: 'conference-leg', parentId: id, disposition: 'ANSWERED', endReason: 'completed', hangupBy: 'participant', mediaPath: 'relay', relayNode: 'conf-node', participantCount: 1 });
      expect(bobLeg.parties).to.deep.equal([{ userId: bob.user.userId, role: 'participant' }]);
      expect(bobLeg.createdAt).to.equal(joinedAt.get(bob.user.userId));
      expect(bobLeg.answeredAt).to.equal(joinedAt.get(bob.user.userId));
      expect(bobLeg.endedAt).to.be.at.least(bobLeg.answeredAt!).and.at.most(Date.now());
      expect(bobLeg.callId).to.match(new RegExp(`^${id}-L\\d+$`));

      // The host leaves: the longest-present participant becomes host.
      await ok(alice.socket, 'conference:leave', { conferenceId: id });
      const handedOver = await waitFor<{ hostId: string; participants: Participant[] }>(carol, 'conference:participants', (p) => p.conferenceId === id && p.hostId === carol.user.userId);
      expect(handedOver.participants.map((p) => [p.userId, p.host])).to.deep.equal([[carol.user.userId, true]]);
      // Alice may come back (she was in it); Carol, now host, ends it for everyone.
      await join(alice, id);
      expect(await errorCode(alice.socket, 'conference:end', { conferenceId: id })).to.equal('NOT_HOST');
      await ok(carol.socket, 'conference:end', { conferenceId: id });
      for (const d of [alice, carol]) expect(await waitFor(d, 'conference:ended', about(id))).to.deep.equal({ conferenceId: id, reason: 'ended_by_host' });
      expect(received(bob, 'conference:ended', id), 'Bob had left').to.deep.equal([]);

      const conf = await factOf(id);
      expect(conf).to.include({ kind: 'conference', disposition: 'ANSWERED', endReason: 'completed', hangupBy: 'host', participantCount: 3, mediaPath: 'relay', relayNode: 'conf-node' });
      expect(conf.parties).to.deep.equal([{ userId: alice.user.userId, role: 'host' }]);
      expect(conf.createdAt).to.be.at.least(t0);
      expect(conf.endedAt).to.be.at.least(conf.createdAt);
      const carolLeg = await legOf(id, carol.user.userId);
      expect(carolLeg).to.include({ endReason: 'completed', hangupBy: 'participant', parentId: id });
      expect(carolLeg.parties).to.deep.equal([{ userId: carol.user.userId, role: 'participant', platform: 'android', appVersion: '3.1.0' }]);
      expect(carolLeg.endedAt).to.equal(conf.endedAt);
      const aliceFirst = await legOf(id, alice.user.userId, 0);
      const aliceSecond = await legOf(id, alice.user.userId, 1);
      expect(aliceFirst).to.include({ endReason: 'completed', hangupBy: 'host' });
      expect(aliceFirst.parties[0]).to.deep.include({ role: 'host', platform: 'web' });
      expect(aliceSecond).to.include({ endReason: 'conference_ended', hangupBy: 'host' });
      expect(aliceSecond.answeredAt).to.be.at.least(aliceFirst.endedAt);

      // Each fact exactly once across both hubs, whichever claimed it.
      await sleep(1500);
      const all = [...facts.facts, ...factsB.facts].filter((f) => f.callId === id || f.parentId === id);
      expect(all.map((f) => f.kind).sort()).to.deep.equal(['conference', 'conference-leg', 'conference-leg', 'conference-leg', 'conference-leg']);
      expect(new Set(all.map((f) => f.callId)).size).to.equal(all.length);
      // The room is gone from the relay, and with it every media right.
      expect(await relay.service.nodeOf(id)).to.equal(null);
      expect(relayNode.room(id)).to.equal(undefined);
      expect(await errorCode(alice.socket, 'media:join', { roomId: id })).to.equal('NOT_IN_ROOM');
      expect(await ack(alice.socket, 'conference:join', { conferenceId: id })).to.deep.equal({ ok: false, error: { code: 'ROOM_NOT_FOUND', message: 'The conference has ended' } });
      expect(await state(alice, id)).to.include({ state: 'ended', endReason: 'ended_by_host', role: 'none' });
    });

    it('ends when the last participant leaves, and stops invitations still ringing', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }] });
      await waitFor(bob, 'conference:incoming', about(id));
      await ok(alice.socket, 'conference:leave', { conferenceId: id });
      expect(await waitFor(bob, 'conference:invite-ended', about(id))).to.deep.include({ reason: 'ended' });
      expect(await factOf(id)).to.include({ kind: 'conference', hangupBy: 'host', participantCount: 1 });
      expect(await legOf(id, alice.user.userId)).to.include({ endReason: 'completed', hangupBy: 'host' });
      expect(await errorCode(bob.socket, 'conference:join', { conferenceId: id })).to.equal('ROOM_NOT_FOUND');
    });
  });

  describe('host controls', () => {
    it('mutes a participant on the relay, removes one, and refuses everyone else', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const carol = await newUser();
      const mallory = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }, { userId: carol.user.userId }] });
      await join(bob, id);
      await join(carol, id);
      const { producerId } = await sendAudio(bob, id);

      // Not the host, or not in it at all.
      for (const [event, payload] of [
        ['conference:mute', { conferenceId: id, userId: bob.user.userId }],
        ['conference:remove', { conferenceId: id, userId: bob.user.userId }],
        ['conference:end', { conferenceId: id }],
      ] as const) {
        expect(await errorCode(carol.socket, event, payload), event).to.equal('NOT_HOST');
        expect(await errorCode(mallory.socket, event, payload), event).to.equal('ROOM_NOT_FOUND');
      }
      expect(await errorCode(alice.socket, 'conference:mute', { conferenceId: id, userId: mallory.user.userId })).to.equal('NOT_FOUND');
      expect(await errorCode(alice.socket, 'conference:remove', { conferenceId: id, userId: mallory.user.userId })).to.equal('NOT_FOUND');
      expect(await errorCode(alice.socket, 'conference:remove', { conferenceId: id, userId: alice.user.userId })).to.equal('BAD_REQUEST');
      const producers = async () => (await relay.service.request(id, 'room.producers', {})).producers;
      expect((await producers()).find((p) => p.producerId === producerId)?.paused).to.equal(false);

      const muted = await ok<{ tracks: number }>(alice.socket, 'conference:mute', { conferenceId: id, userId: bob.user.userId, kind: 'audio' });
      expect(muted.tracks).to.equal(1);
      expect(await waitFor(bob, 'conference:muted', about(id))).to.deep.equal({ conferenceId: id, kind: 'audio', by: alice.user.userId });
      expect(await waitFor(bob, 'media:producer-paused', (p) => p.producerId === producerId)).to.deep.include({ paused: true, userId: bob.user.userId });
      expect((await producers()).find((p) => p.producerId === producerId)?.paused).to.equal(true);
      const shown = await waitFor<{ participants: Participant[] }>(carol, 'conference:participants',
        (p) => p.conferenceId === id && (p.participants as Participant[]).some((x) => x.userId === bob.user.userId && x.audio === 'muted'));
      expect(shown.participants.find((x) => x.userId === carol.user.userId)?.audio).to.equal('off');
      expect(received(carol, 'conference:muted', id), 'only the muted participant is told').to.deep.equal([]);
      // Muting again changes nothing.
      expect((await ok<{ tracks: number }>(alice.socket, 'conference:mute', { conferenceId: id, userId: bob.user.userId })).tracks).to.equal(0);

      await ok(alice.socket, 'conference:remove', { conferenceId: id, userId: bob.user.userId });
      // At once after the host's ack: Bob's media is refused.
      expect(await errorCode(bob.socket, 'media:transport-create', { roomId: id, direction: 'send' })).to.equal('NOT_IN_ROOM');
      expect(await errorCode(bob.socket, 'media:producer-resume', { roomId: id, producerId })).to.equal('NOT_IN_ROOM');
      expect(await waitFor(bob, 'conference:removed', about(id))).to.deep.equal({ conferenceId: id, reason: 'host' });
      expect(await waitFor(carol, 'conference:participant-left', about(id))).to.deep.equal({ conferenceId: id, userId: bob.user.userId, reason: 'removed' });
      expect(await legOf(id, bob.user.userId)).to.include({ endReason: 'removed', hangupBy: 'host' });
      expect((await producers()).map((p) => p.producerId)).to.not.include(producerId);
      expect(relayNode.room(id)!.peerCount).to.equal(0);
      // Removed means out: no rejoin without a new invitation.
      expect(await errorCode(bob.socket, 'conference:join', { conferenceId: id })).to.equal('ROOM_NOT_FOUND');
      expect(await errorCode(bob.socket, 'conference:state', { conferenceId: id })).to.equal('ROOM_NOT_FOUND');
      await ok(alice.socket, 'conference:invite', { conferenceId: id, invite: [{ userId: bob.user.userId }] });
      await join(bob, id);

      // Withdrawing a ringing invitation.
      const dave = await newUser();
      await ok(alice.socket, 'conference:invite', { conferenceId: id, invite: [{ userId: dave.user.userId }] });
      await waitFor(dave, 'conference:incoming', about(id));
      await ok(alice.socket, 'conference:remove', { conferenceId: id, userId: dave.user.userId });
      expect(await waitFor(dave, 'conference:invite-ended', about(id))).to.deep.include({ reason: 'cancelled' });
      expect(await errorCode(dave.socket, 'conference:join', { conferenceId: id })).to.equal('ROOM_NOT_FOUND');
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });

    it('shows a participant muting and unmuting themselves to everyone, one list per device on either hub', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const carol = await newUser(undefined, hubB); // on the other hub process
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }, { userId: carol.user.userId }] });
      await join(bob, id);
      await join(carol, id);
      const bobAudio = (d: Device, audio: string) => waitFor<{ participants: Participant[] }>(d, 'conference:participants',
        (p) => p.conferenceId === id && (p.participants as Participant[]).some((x) => x.userId === bob.user.userId && x.audio === audio));
      const listsSince = (d: Device, from: number) => received(d, 'conference:participants', id).slice(from);
      const bobStates = (lists: Record<string, unknown>[]) => lists.map((l) => (l.participants as Participant[]).find((x) => x.userId === bob.user.userId)?.audio);
      for (const d of [alice, carol]) await waitFor(d, 'conference:participants', (p) => p.conferenceId === id && (p.participants as unknown[]).length === 3);

      // A track starting shows as "on".
      const { producerId } = await sendAudio(bob, id);
      for (const d of [alice, carol]) await bobAudio(d, 'on');
      await sleep(300); // let every list about the start arrive
      const before = new Map([alice, carol, bob].map((d) => [d, received(d, 'conference:participants', id).length]));

      // Bob mutes himself (not the host): everyone's list says so, Bob's own included.
      await ok(bob.socket, 'media:producer-pause', { roomId: id, producerId });
      for (const d of [alice, carol, bob]) await bobAudio(d, 'muted');
      expect((await state(carol, id)).participants.find((x) => x.userId === bob.user.userId)?.audio).to.equal('muted');
      await sleep(300);
      // Every hub hears the relay's notice, but each device gets the list once, from its own hub.
      for (const d of [alice, carol, bob]) expect(bobStates(listsSince(d, before.get(d)!))).to.deep.equal(['muted']);
      expect(received(bob, 'conference:muted', id), 'a self-mute is not a host mute').to.deep.equal([]);

      // Unmuting, and the track ending, show too.
      const afterMute = new Map([alice, carol].map((d) => [d, received(d, 'conference:participants', id).length]));
      await ok(bob.socket, 'media:producer-resume', { roomId: id, producerId });
      for (const d of [alice, carol]) await eventually(() => bobStates(listsSince(d, afterMute.get(d)!)).includes('on'), 'the unmute in the list');
      await ok(bob.socket, 'media:producer-close', { roomId: id, producerId });
      for (const d of [alice, carol]) await eventually(() => bobStates(listsSince(d, afterMute.get(d)!)).at(-1) === 'off', 'the ended track in the list');
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });

    it('refuses joins and invitations beyond the maximum size with ROOM_FULL', async () => {
      const [a, b, c, d, e] = await Promise.all([newUser(), newUser(), newUser(), newUser(), newUser()]);
      const everyone = [b, c, d, e].map((x) => ({ userId: x.user.userId }));
      expect(await errorCode(a.socket, 'conference:create', { invite: everyone })).to.equal('ROOM_FULL');
      const { conferenceId: id } = await create(a, { invite: everyone.slice(0, 3) });
      // Ringing invitations hold their places.
      expect(await errorCode(a.socket, 'conference:invite', { conferenceId: id, invite: [{ userId: e.user.userId }] })).to.equal('ROOM_FULL');
      await ok(b.socket, 'conference:decline', { conferenceId: id });
      await ok(a.socket, 'conference:invite', { conferenceId: id, invite: [{ userId: e.user.userId }] });
      for (const x of [c, d, e]) await join(x, id);
      // Bob declined earlier but may join while there is room; now there is none.
      const full = await ack(b.socket, 'conference:join', { conferenceId: id });
      expect(full).to.deep.equal({ ok: false, error: { code: 'ROOM_FULL', message: 'The conference is full' } });
      expect((await state(a, id)).participants).to.have.length(MAX);
      await ok(e.socket, 'conference:leave', { conferenceId: id });
      await join(b, id);
      await ok(a.socket, 'conference:end', { conferenceId: id });
    });
  });

  describe('from a 1:1 call', () => {
    it('turns an answered call into a conference when a party invites a third person', async () => {
      const a = await newUser('Ann');
      const b = await newUser('Ben');
      const c = await newUser('Cid');
      const mallory = await newUser();
      const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId }, sdp: fakeSdp() });
      await b.inbox.next('call:incoming', callId);
      await ok(b.socket, 'call:accept', { callId, sdp: fakeSdp() });
      await a.inbox.next('call:accepted', callId);
      await ok(a.socket, 'call:report', { callId, event: 'connected', path: { local: 'host', remote: 'host' } });

      expect(await errorCode(mallory.socket, 'conference:create', { fromCallId: callId })).to.equal('CALL_NOT_FOUND');
      const created = await create(b, { fromCallId: callId, invite: [{ userId: c.user.userId }, { userId: a.user.userId }] });
      const id = created.conferenceId;
      expect(created.invited).to.deep.equal([c.user.userId]);
      expect(created.conference.hostId).to.equal(b.user.userId);
      expect(created.conference.participants.map((p) => p.userId).sort()).to.deep.equal([a.user.userId, b.user.userId].sort());

      // Ann hears where her call went before she hears it ended.
      const moved = await waitFor<{ fromCallId: string; roomId: string; conference: View }>(a, 'conference:moved', about(id));
      expect(moved).to.deep.include({ fromCallId: callId, roomId: id });
      expect(moved.conference).to.include({ role: 'participant', thisDevice: true });
      expect(await a.inbox.next('call:ended', callId)).to.deep.equal({ callId, reason: 'completed' });
      expect(await b.inbox.next('call:ended', callId)).to.deep.equal({ callId, reason: 'completed' });
      const order = a.inbox.events.map((e) => e.event).filter((e) => e === 'conference:moved' || e === 'call:ended');
      expect(order).to.deep.equal(['conference:moved', 'call:ended']);
      expect(await factOf(callId)).to.include({ kind: 'p2p', disposition: 'ANSWERED', endReason: 'completed', hangupBy: 'callee' });
      // Both are free for calls again, and both carry media in the conference room.
      expect((await ok<{ calls: unknown[] }>(a.socket, 'call:list', {})).calls).to.deep.equal([]);
      await sendAudio(a, id);
      await ok(b.socket, 'media:join', { roomId: id });

      const incoming = await waitFor<{ inviter: unknown; participantCount: number }>(c, 'conference:incoming', about(id));
      expect(incoming).to.deep.include({ inviter: { userId: b.user.userId, phone: b.user.phone, displayName: 'Ben' }, participantCount: 2 });
      await join(c, id);
      expect((await state(a, id)).participants).to.have.length(3);
      // The call is gone: it cannot be moved twice.
      expect(await errorCode(a.socket, 'conference:create', { fromCallId: callId })).to.equal('CALL_INVALID_STATE');
      await ok(b.socket, 'conference:end', { conferenceId: id });
      expect(await factOf(id)).to.include({ participantCount: 3 });
    });

    it('refuses a call that is not answered, or not on this device', async () => {
      const a = await newUser();
      const a2 = await otherDevice(a);
      const b = await newUser();
      const { callId } = await ok<{ callId: string }>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
      expect(await errorCode(a.socket, 'conference:create', { fromCallId: callId })).to.equal('CALL_INVALID_STATE');
      await b.inbox.next('call:incoming', callId);
      await ok(b.socket, 'call:accept', { callId });
      expect(await errorCode(a2.socket, 'conference:create', { fromCallId: callId })).to.equal('CALL_INVALID_STATE');
      await ok(a.socket, 'call:hangup', { callId });
    });
  });

  describe('connections and accounts', () => {
    it('resumes a participant that reconnects within the grace period and removes one that does not', async () => {
      const alice = await newUser();
      let bob = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }] });
      await join(bob, id);
      bob.socket.close();
      bob = await reconnect(bob.user, hubB);
      const resumed = await waitFor<{ conference: View }>(bob, 'conference:resumed');
      expect(resumed.conference).to.include({ conferenceId: id, role: 'participant', thisDevice: true });
      await sleep(1300);
      expect((await state(alice, id)).participants.map((p) => [p.userId, p.connection])).to.deep.equal([[alice.user.userId, 'online'], [bob.user.userId, 'online']]);

      bob.socket.close();
      const lost = await waitFor<{ participants: Participant[] }>(alice, 'conference:participants',
        (p) => p.conferenceId === id && (p.participants as Participant[]).some((x) => x.connection === 'lost'));
      expect(lost.participants.find((x) => x.userId === bob.user.userId)?.connection).to.equal('lost');
      expect(await waitFor(alice, 'conference:participant-left', about(id), 6000)).to.deep.equal({ conferenceId: id, userId: bob.user.userId, reason: 'lost' });
      expect(await legOf(id, bob.user.userId)).to.include({ endReason: 'party_lost', hangupBy: 'system' });
      expect(await relay.membership.isMember(id, bob.user.userId, bob.user.deviceId)).to.equal(false);
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });

    it('takes an erased account out of its conferences and invitations', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const carol = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }, { userId: carol.user.userId }] });
      await join(bob, id);
      await waitFor(carol, 'conference:incoming', about(id));
      hub.ctx.events.emit('user:deleted', { userId: bob.user.userId });
      hub.ctx.events.emit('user:deleted', { userId: carol.user.userId });
      expect(await waitFor(alice, 'conference:participant-left', about(id))).to.deep.include({ userId: bob.user.userId, reason: 'left' });
      expect(await waitFor(alice, 'conference:invite-ended', (p) => p.conferenceId === id && p.userId === carol.user.userId)).to.deep.include({ reason: 'cancelled' });
      expect(await waitFor(carol, 'conference:invite-ended', about(id))).to.deep.include({ reason: 'cancelled' });
      expect(await legOf(id, bob.user.userId)).to.include({ endReason: 'party_lost', hangupBy: 'system' });
      const s = await state(alice, id);
      expect(s.participants.map((p) => p.userId)).to.deep.equal([alice.user.userId]);
      expect(s.invited).to.deep.equal([]);
      await ok(alice.socket, 'conference:end', { conferenceId: id });
    });
  });

  describe('privacy', () => {
    it('charges inviting by number to the discovery quota, as call:invite does, and lists nobody\'s number', async () => {
      const alice = await newUser('Alice');
      const carol = await newUser('Carol');
      const quota = redis.client();
      try {
        const used = async () => Number((await quota.get(keys.userQuota(alice.user.userId, 'discovery'))) ?? 0);
        expect(await used()).to.equal(0);
        const { conferenceId: id, conference } = await create(alice, { invite: [{ phone: carol.user.phone }] });
        expect(await used()).to.equal(1);
        expect(await errorCode(alice.socket, 'conference:invite', { conferenceId: id, invite: [{ phone: '+14155550100' }] })).to.equal('CALLEE_NOT_FOUND');
        expect(await used(), 'a number that is nobody costs the same').to.equal(2);
        await create(alice, { invite: [{ phone: carol.user.phone }] });
        expect(await used(), 'a number already looked up today is free').to.equal(2);
        expect(JSON.stringify(conference)).not.to.contain(carol.user.phone);
      } finally {
        quota.disconnect();
      }
    });
  });

  describe('bad input', () => {
    it('refuses malformed and oversized payloads, and media ids that are not the device\'s own or not of this room', async () => {
      const alice = await newUser();
      const bob = await newUser();
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }] });
      await join(bob, id);
      const tooMany = Array.from({ length: 33 }, () => ({ userId: bob.user.userId }));
      for (const [event, payload] of [
        ['conference:create', { invite: tooMany }],
        ['conference:create', { invite: [] }],
        ['conference:create', { surprise: 1 }],
        ['conference:create', { invite: [{ userId: bob.user.userId, phone: bob.user.phone }] }],
        ['conference:create', { fromCallId: '../etc' }],
        ['conference:join', { conferenceId: 'x'.repeat(65) }],
        ['conference:join', {}],
        ['conference:join', 'please'],
        ['conference:mute', { conferenceId: id, userId: bob.user.userId, kind: 'screen' }],
        ['conference:invite', { conferenceId: id, invite: tooMany }],
        ['conference:list', { all: true }],
      ] as const) {
        expect(await errorCode(alice.socket, event, payload), `${event} ${JSON.stringify(payload).slice(0, 60)}`).to.equal('VALIDATION_FAILED');
      }
      const unknown = await ack(alice.socket, 'conference:invite', { conferenceId: id, invite: [{ userId: bob.user.userId }, { userId: 'uNoSuchUser000' }] });
      expect(unknown).to.deep.include({ ok: false });
      expect(!unknown.ok && unknown.error).to.deep.include({ code: 'CALLEE_NOT_FOUND', details: { index: 1 } });
      expect(await errorCode(alice.socket, 'conference:invite', { conferenceId: id, invite: [{ phone: 'not a number' }] })).to.equal('PHONE_INVALID');
      expect(await errorCode(alice.socket, 'conference:create', { invite: [{ phone: '+14155550100' }] })).to.equal('CALLEE_NOT_FOUND');

      // Media: Alice's transport is not Bob's, and a producer of another room cannot be consumed here.
      const { transportId } = await sendAudio(alice, id);
      await ok(bob.socket, 'media:join', { roomId: id });
      expect(await errorCode(bob.socket, 'media:transport-connect', { roomId: id, transportId, dtlsParameters: clientDtlsParameters() })).to.equal('TRANSPORT_NOT_FOUND');
      const other = await create(bob);
      const elsewhere = await sendAudio(bob, other.conferenceId, 33333333);
      const recv = await ok<{ id: string }>(alice.socket, 'media:transport-create', { roomId: id, direction: 'recv' });
      expect(await errorCode(alice.socket, 'media:consume', { roomId: id, transportId: recv.id, producerId: elsewhere.producerId, rtpCapabilities: deviceRtpCapabilities() })).to.equal('PRODUCER_NOT_FOUND');
      expect(await errorCode(alice.socket, 'media:consume', { roomId: other.conferenceId, transportId: recv.id, producerId: elsewhere.producerId, rtpCapabilities: deviceRtpCapabilities() })).to.equal('NOT_IN_ROOM');
      await ok(alice.socket, 'conference:end', { conferenceId: id });
      await ok(bob.socket, 'conference:end', { conferenceId: other.conferenceId });
    });
  });

  describe('call records across an outage of every hub', () => {
    /** ConferenceService's ENDED_RETENTION_MS: how long an ended conference's state stays. */
    const ENDED_RETENTION_MS = 10 * 60_000;
    let quiet: TestRedis | undefined;
    let late: Hub | undefined;
    let redisClient: Redis | undefined;
    after(async () => {
      await late?.close();
      redisClient?.disconnect();
      await quiet?.stop();
    });

    it('still emits each pending fact exactly once after the ended conference\'s state expired, and logs a fact that is gone', async () => {
      // A Redis no hub watches yet: every hub is down while the conference ends.
      quiet = await TestRedis.start();
      const r = redisClient = quiet.client();
      const store = new ConferenceStore(r, { activeTtlMs: 60_000, endedTtlMs: ENDED_RETENTION_MS });
      const id = newConferenceId();
      const t0 = Date.now() - 60_000;
      const party = (userId: string) => ({ userId, sessionId: `s-${userId}`, deviceId: `d-${userId}`, platform: 'web', appVersion: '1.0.0' });
      expect(await store.create({
        conferenceId: id, now: t0, hostId: 'uHostOutage01', video: false, max: 4, fromCallId: undefined, maxDueAt: t0 + 3_600_000,
        relayNode: 'relay-x', participants: [party('uHostOutage01'), party('uPartOutage02')],
      })).to.equal('ok');
      const left = await store.leave(id, { userId: 'uPartOutage02', now: t0 + 1000, mode: 'leave', legReason: 'completed', legHangupBy: 'self', relayNode: '' });
      expect(left).to.include({ status: 'ok', ended: false });
      const ended = await store.end(id, {
        now: t0 + 2000, reason: 'ended_by_host', confHangup: 'host', byUser: 'uHostOutage01', byReason: 'completed',
        othersReason: 'conference_ended', othersHangup: 'host', relayNode: '',
      });
      expect(ended.status).to.equal('ok');

      // The facts outlive the ended conference's state.
      const stateKeys = await r.keys(`${keys.conference(id)}*`);
      expect(stateKeys).to.include(keys.conferenceFacts(id));
      expect(await r.pttl(keys.conferenceFacts(id))).to.be.greaterThan(ENDED_RETENTION_MS).and.at.most(FACTS_RETENTION_MS);
      expect(await r.pttl(keys.conference(id))).to.be.within(1, ENDED_RETENTION_MS);
      // The retention passes: every key it bounds goes, as its TTL would make it.
      let expired = 0;
      for (const k of stateKeys) {
        if ((await r.pttl(k)) <= ENDED_RETENTION_MS) expired += await r.del(k);
      }
      expect(expired).to.be.at.least(3);
      expect(await r.exists(keys.conference(id))).to.equal(0);
      expect(await r.zrangebyscore(keys.conferenceTimers(), '-inf', '+inf')).to.have.members([`${id}|fact:${id}-L1`, `${id}|fact:${id}-L2`, `${id}|fact:conf`]);

      // A due entry whose fact is gone (deleted by hand): claimed, and said loudly.
      const gone = newConferenceId();
      await r.zadd(keys.conferenceTimers(), t0, `${gone}|fact:${gone}-L1`);

      // A hub comes back and claims everything pending.
      const lines: string[] = [];
      late = await Hub.start(testHubConfig(quiet.url), { log: createLogger({ level: 'info', name: 'hub' }, { write: (l: string) => void lines.push(l) }) });
      const log = new FactLog(late);
      const mine = () => log.facts.filter((f) => f.callId === id || f.parentId === id);
      await eventually(() => mine().length >= 3, 'the pending facts');
      const missing = await eventually(() => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'conference fact claimed but missing; its call record is lost'), 'the missing-fact error');
      expect(missing).to.include({ level: 50, conferenceId: gone, factId: `${gone}-L1` });
      await sleep(1500); // more scans: nothing is emitted twice
      expect(mine().map((f) => [f.callId, f.kind, f.endReason, f.parties[0]!.userId]).sort()).to.deep.equal([
        [id, 'conference', 'completed', 'uHostOutage01'],
        [`${id}-L1`, 'conference-leg', 'completed', 'uHostOutage01'],
        [`${id}-L2`, 'conference-leg', 'completed', 'uPartOutage02'],
      ].sort());
      expect(log.facts.filter((f) => f.callId.startsWith(gone))).to.deep.equal([]);
      // Nothing left behind: the facts hash went with its last fact, every due entry was consumed.
      expect(await r.exists(keys.conferenceFacts(id))).to.equal(0);
      expect(await r.zcard(keys.conferenceTimers())).to.equal(0);
    });
  });

  describe('relay worker death', () => {
    it('keeps the conference when its media worker dies: members rejoin the recreated room', async () => {
      const alice = await newUser();
      const bob = await newUser(undefined, hubB);
      const { conferenceId: id } = await create(alice, { invite: [{ userId: bob.user.userId }] });
      await join(bob, id);
      await sendAudio(alice, id);
      await ok(bob.socket, 'media:join', { roomId: id });
      const before = await state(alice, id);
      const worker = relayNode.room(id)!.workers[0]!;
      process.kill(worker.worker.pid, 'SIGKILL');
      for (const d of [alice, bob]) {
        expect(await waitFor(d, 'media:room-lost', (p) => p.roomId === id)).to.deep.equal({ roomId: id, reason: 'worker_died', action: 'rejoin' });
      }
      for (const d of [alice, bob]) {
        await eventually(async () => (await ack(d.socket, 'media:join', { roomId: id })).ok, 'rejoin after the worker died');
      }
      await sendAudio(alice, id, 44444444);
      const after = await state(bob, id);
      expect(after.participants.map((p) => [p.userId, p.joinedAt, p.connection])).to.deep.equal(before.participants.map((p) => [p.userId, p.joinedAt, p.connection]));
      expect(after).to.include({ state: 'active', hostId: alice.user.userId });
      await ok(alice.socket, 'conference:end', { conferenceId: id });
      expect(await waitFor(bob, 'conference:ended', about(id))).to.deep.include({ reason: 'ended_by_host' });
    });
  });
});
