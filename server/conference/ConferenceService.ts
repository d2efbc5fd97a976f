import type { z } from 'zod';
import { AppError } from '../../shared/protocol/errors.js';
import { E164 } from '../../shared/protocol/common.js';
import type { CallParty } from '../../shared/protocol/calls.js';
import type {
  ConferenceEndReason, ConferenceInvitee, ConferenceParticipant, ConferenceView, TrackState, conferenceRequests,
} from '../../shared/protocol/conference.js';
import type { ProducerInfo } from '../../shared/protocol/relayControl.js';
import type { ServerNoticeName, ServerNotices } from '../../shared/protocol/events.js';
import type { HubContext } from '../HubContext.js';
import type { Logger } from '../../shared/runtime/log.js';
import type { Profile } from '../identity/Accounts.js';
import { PhoneNumbers } from '../identity/PhoneNumbers.js';
import type { RelayServices } from '../relay/registerRelay.js';
import { peerIdOf } from '../relay/RoomMembership.js';
import { rooms, type HubSocket } from '../socket/SocketGateway.js';
import {
  decodePendingFact, invitationOf, newConferenceId, participantOf, roleIn, toFact,
  type ConferenceRecord, type ConferenceTimer, type ParticipantRecord,
} from './Conference.js';
import { ConferenceStore, type InitialParticipant, type LeaveResult } from './ConferenceStore.js';
import { ConferenceTimers } from './ConferenceTimers.js';

type Req<K extends keyof typeof conferenceRequests> = z.output<(typeof conferenceRequests)[K]['request']>;
type Res<K extends keyof typeof conferenceRequests> = z.input<(typeof conferenceRequests)[K]['response']>;
type NoticePayload<K extends ServerNoticeName> = z.output<ServerNotices[K]['payload']>;
type Target = NonNullable<Req<'conference:create'>['invite']>[number];
type LeftOk = Extract<LeaveResult, { status: 'ok' }>;

/** An ended conference stays readable this long, so late requests learn it ended. */
const ENDED_RETENTION_MS = 10 * 60_000;

/**
 * Conferences on one hub process: socket handlers, reactions to connects,
 * disconnects, timers and account erasure. State lives in Redis
 * (ConferenceStore), media in a relay room named after the conference
 * (ctx.relay); any hub can act on any conference.
 *
 * Authorization: a user who was never invited (or was removed) gets
 * ROOM_NOT_FOUND for everything, exactly as for an id that does not exist;
 * host controls give NOT_HOST to everyone else who may see the conference.
 */
export class ConferenceService {
  readonly #ctx: HubContext;
  readonly #relay: RelayServices;
  readonly #log: Logger;
  readonly #store: ConferenceStore;
  readonly #timers: ConferenceTimers;
  readonly #ringMs: number;
  readonly #graceMs: number;
  readonly #maxMs: number;
  readonly #max: number;
  /** Background work (post-ack notices, disconnect handling), awaited on close. */
  readonly #pending = new Set<Promise<unknown>>();
  /** Conferences whose track states this hub is re-sending; true: a change came meanwhile, send again. */
  readonly #trackRefresh = new Map<string, boolean>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  constructor(ctx: HubContext, relay: RelayServices) {
    const c = ctx.config;
    this.#ctx = ctx;
    this.#relay = relay;
    this.#log = ctx.log.child({ sub: 'conference' });
    this.#ringMs = c.CALL_RING_TIMEOUT_S * 1000;
    this.#graceMs = c.CALL_RECONNECT_GRACE_S * 1000;
    this.#maxMs = c.CALL_MAX_DURATION_S * 1000;
    this.#max = c.CONFERENCE_MAX_PARTICIPANTS;
    this.#store = new ConferenceStore(ctx.redis, {
      activeTtlMs: this.#maxMs + this.#ringMs + 10 * 60_000,
      endedTtlMs: ENDED_RETENTION_MS,
    });
    this.#timers = new ConferenceTimers(this.#store, (id, t) => this.#onTimer(id, t), this.#log, { scanIntervalMs: 1000, batch: 100 });
  }

  start(): void {
    this.#timers.start();
    // A track started, stopped, or was muted/unmuted (by its owner or the host): participants' track states changed.
    const relay = this.#relay.service;
    const onTracks = ({ roomId }: { roomId: string }) => this.#onTracksChanged(roomId);
    for (const name of ['peer.producerAdded', 'peer.producerClosed', 'peer.producerPaused'] as const) {
      relay.on(name, onTracks);
      this.#unsubscribe.push(() => relay.off(name, onTracks));
    }
  }

  /** Stops timers and waits for in-flight background work. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#timers.close();
    await Promise.allSettled([...this.#pending]);
  }

  // ---- Socket requests ----

  async create(socket: HubSocket, p: Req<'conference:create'>): Promise<Res<'conference:create'>> {
    const { userId, sessionId, deviceId } = socket.data;
    const me = await this.#ctx.accounts.get(userId);
    const moved = p.fromCallId ? await this.#callToMove(p.fromCallId, userId, sessionId) : undefined;
    const invitees = p.invite ? await this.#resolve(p.invite, me, [userId, moved?.other.userId]) : [];
    const initial: InitialParticipant[] = [{
      userId, sessionId, deviceId,
      platform: p.client?.platform ?? moved?.own.platform, appVersion: p.client?.appVersion ?? moved?.own.appVersion,
    }];
    if (moved) initial.push(moved.other);
    if (initial.length + invitees.length > this.#max) {
      throw new AppError('ROOM_FULL', `A conference holds at most ${this.#max} people`, { details: { maxParticipants: this.#max } });
    }

    const conferenceId = newConferenceId();
    // Placed first: without a relay there is no conference (RELAY_UNAVAILABLE), and nothing to undo.
    const { nodeId } = await this.#relay.service.openRoom(conferenceId);
    const now = Date.now();
    await Promise.all([...initial.map((x) => x.userId), ...invitees].map((uid) => this.#store.index(uid, conferenceId)));
    await this.#store.create({
      conferenceId, now, hostId: userId, video: p.video, max: this.#max, fromCallId: p.fromCallId,
      maxDueAt: now + this.#maxMs, relayNode: nodeId, participants: initial,
    });
    await Promise.all(initial.map((x) => this.#relay.membership.add(conferenceId, x.userId, x.deviceId)));
    let rung: string[] = [];
    const expiresAt = now + this.#ringMs;
    if (invitees.length) {
      const r = await this.#store.invite(conferenceId, userId, invitees, now, expiresAt);
      if (r.status === 'ok') rung = r.rung;
    }
    const conf = await this.#read(conferenceId);
    const view = await this.#view(conf, userId, sessionId, true);

    if (moved) {
      const otherView = await this.#view(conf, moved.other.userId, moved.other.sessionId, true);
      // The call ends after both views exist, so this ack and conference:moved precede its call:ended.
      const ended = await this.#ctx.calls!.end(moved.callId, 'completed', moved.role);
      if (!ended) {
        await this.#discard(conferenceId, [...initial.map((x) => x.userId), ...invitees]);
        throw new AppError('CALL_INVALID_STATE', 'The call has ended');
      }
      this.#notify([rooms.session(moved.other.sessionId)], 'conference:moved', {
        conferenceId, roomId: conferenceId, fromCallId: moved.callId, conference: otherView,
      });
      this.#log.info({ conferenceId, callId: moved.callId }, 'call turned into a conference');
    }

    this.#timers.arm(conferenceId, { kind: 'max' }, now + this.#maxMs);
    for (const uid of rung) this.#timers.arm(conferenceId, { kind: 'ring', userId: uid }, expiresAt);
    this.#log.info({ conferenceId, userId, participants: initial.length, invited: rung.length, relayNode: nodeId }, 'conference created');
    if (rung.length) this.#afterAck(() => this.#ring(conferenceId, userId, me, rung, expiresAt));
    return { conferenceId, roomId: conferenceId, conference: view, invited: rung };
  }

  async invite(socket: HubSocket, p: Req<'conference:invite'>): Promise<Res<'conference:invite'>> {
    const { userId } = socket.data;
    const conf = await this.#live(p.conferenceId, userId);
    if (!participantOf(conf, userId)) throw new AppError('NOT_IN_ROOM', 'Join the conference to invite');
    const me = await this.#ctx.accounts.get(userId);
    const invitees = await this.#resolve(p.invite, me, [userId]);
    if (!invitees.length) return { invited: [] };
    await Promise.all(invitees.map((uid) => this.#store.index(uid, p.conferenceId)));
    const now = Date.now();
    const expiresAt = now + this.#ringMs;
    const r = await this.#store.invite(p.conferenceId, userId, invitees, now, expiresAt);
    switch (r.status) {
      case 'not_found':
      case 'ended':
        throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
      case 'not_participant':
        throw new AppError('NOT_IN_ROOM', 'Join the conference to invite');
      case 'full':
        throw new AppError('ROOM_FULL', `A conference holds at most ${conf.maxParticipants} people, ringing invitations included`, {
          details: { maxParticipants: conf.maxParticipants },
        });
      case 'ok':
        break;
    }
    for (const uid of r.rung) this.#timers.arm(p.conferenceId, { kind: 'ring', userId: uid }, expiresAt);
    this.#log.info({ conferenceId: p.conferenceId, userId, invited: r.rung.length }, 'conference invitations');
    this.#afterAck(async () => {
      await this.#ring(p.conferenceId, userId, me, r.rung, expiresAt);
      await this.#broadcastParticipants(p.conferenceId);
    });
    return { invited: r.rung };
  }

  async join(socket: HubSocket, p: Req<'conference:join'>): Promise<Res<'conference:join'>> {
    const { userId, sessionId, deviceId } = socket.data;
    const id = p.conferenceId;
    const r = await this.#store.join(id, {
      userId, sessionId, deviceId, now: Date.now(), platform: p.client?.platform, appVersion: p.client?.appVersion,
    });
    switch (r.status) {
      case 'not_found':
        throw new AppError('ROOM_NOT_FOUND');
      case 'ended':
        throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
      case 'full':
        throw new AppError('ROOM_FULL', 'The conference is full');
      case 'moved':
        // The participation moves to this device: the previous one leaves the media.
        this.#timers.disarm(id, { kind: 'grace', userId });
        if (r.prevDevice !== deviceId) await this.#removePeer(id, userId, r.prevDevice);
        this.#afterAck(() => this.#notify([rooms.session(r.prevSession)], 'conference:removed', { conferenceId: id, reason: 'joined_elsewhere' }));
        break;
      case 'already':
        this.#timers.disarm(id, { kind: 'grace', userId });
        break;
      case 'joined':
        this.#timers.disarm(id, { kind: 'ring', userId });
        break;
    }
    await this.#relay.membership.add(id, userId, deviceId);
    await this.#store.index(userId, id);
    const conf = await this.#read(id);
    const view = await this.#view(conf, userId, sessionId, true);
    if (r.status === 'joined') {
      this.#log.info({ conferenceId: id, userId }, 'conference joined');
      this.#afterAck(async () => {
        const joined = view.participants.find((x) => x.userId === userId);
        if (joined) this.#notify(this.#sessionsOf(conf, userId), 'conference:participant-joined', { conferenceId: id, participant: joined });
        if (r.wasRinging) this.#notify([rooms.user(userId), ...this.#sessionsOf(conf, userId)], 'conference:invite-ended', { conferenceId: id, userId, reason: 'joined' });
        await this.#broadcastParticipants(id);
      });
    } else if (r.status === 'moved' || (r.status === 'already' && r.wasLost)) {
      this.#afterAck(() => this.#broadcastParticipants(id));
    }
    return { conferenceId: id, roomId: id, conference: view };
  }

  async decline(socket: HubSocket, p: Req<'conference:decline'>): Promise<Res<'conference:decline'>> {
    const { userId } = socket.data;
    const conf = await this.#visible(p.conferenceId, userId);
    if (conf.state === 'ended') return {};
    if (await this.#store.unring(p.conferenceId, userId, Date.now())) {
      this.#timers.disarm(p.conferenceId, { kind: 'ring', userId });
      this.#afterAck(() => this.#inviteEnded(p.conferenceId, userId, 'declined'));
    }
    return {};
  }

  async leave(socket: HubSocket, p: Req<'conference:leave'>): Promise<Res<'conference:leave'>> {
    const { userId } = socket.data;
    await this.#live(p.conferenceId, userId);
    const r = await this.#store.leave(p.conferenceId, {
      userId, now: Date.now(), mode: 'leave', legReason: 'completed', legHangupBy: 'self', relayNode: await this.#nodeOf(p.conferenceId),
    });
    switch (r.status) {
      case 'ok':
        await this.#afterLeft(p.conferenceId, userId, r, 'left');
        return {};
      case 'not_participant':
        throw new AppError('NOT_IN_ROOM');
      default:
        throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
    }
  }

  async end(socket: HubSocket, p: Req<'conference:end'>): Promise<Res<'conference:end'>> {
    const { userId } = socket.data;
    const conf = await this.#live(p.conferenceId, userId);
    if (conf.hostId !== userId) throw new AppError('NOT_HOST');
    const r = await this.#store.end(p.conferenceId, {
      now: Date.now(), reason: 'ended_by_host', confHangup: 'host', byUser: userId, byReason: 'completed',
      othersReason: 'conference_ended', othersHangup: 'host', requireHost: userId, relayNode: await this.#nodeOf(p.conferenceId),
    });
    switch (r.status) {
      case 'ok':
        this.#log.info({ conferenceId: p.conferenceId }, 'conference ended by its host');
        await this.#afterEnded(p.conferenceId, r.participants, r.ringing, 'ended_by_host');
        return {};
      case 'not_host':
        throw new AppError('NOT_HOST');
      default:
        throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
    }
  }

  async mute(socket: HubSocket, p: Req<'conference:mute'>): Promise<Res<'conference:mute'>> {
    const { userId } = socket.data;
    const conf = await this.#live(p.conferenceId, userId);
    if (conf.hostId !== userId) throw new AppError('NOT_HOST');
    const target = participantOf(conf, p.userId);
    if (!target) throw new AppError('NOT_FOUND', 'No such participant');
    let tracks = 0;
    try {
      tracks = await this.#relay.media.setTracksPaused(p.conferenceId, p.userId, true, p.kind);
    } catch (err) {
      // No media room (nobody joined the media yet): nothing to mute.
      if (!(err instanceof AppError && err.code === 'ROOM_NOT_FOUND')) throw err;
    }
    this.#log.info({ conferenceId: p.conferenceId, kind: p.kind ?? 'all', tracks }, 'host muted a participant');
    // The paused tracks reach everyone's conference:participants through the relay's notices (#onTracksChanged).
    this.#afterAck(() => {
      this.#notify([rooms.session(target.sessionId)], 'conference:muted', { conferenceId: p.conferenceId, kind: p.kind ?? null, by: userId });
    });
    return { tracks };
  }

  async remove(socket: HubSocket, p: Req<'conference:remove'>): Promise<Res<'conference:remove'>> {
    const { userId } = socket.data;
    const conf = await this.#live(p.conferenceId, userId);
    if (conf.hostId !== userId) throw new AppError('NOT_HOST');
    if (p.userId === userId) throw new AppError('BAD_REQUEST', 'Use conference:leave to leave');
    const r = await this.#store.leave(p.conferenceId, {
      userId: p.userId, now: Date.now(), mode: 'remove', legReason: 'removed', legHangupBy: 'host', requireHost: userId,
      relayNode: await this.#nodeOf(p.conferenceId),
    });
    switch (r.status) {
      case 'ok':
        this.#log.info({ conferenceId: p.conferenceId }, 'host removed a participant');
        await this.#store.unindex(p.userId, p.conferenceId);
        await this.#afterLeft(p.conferenceId, p.userId, r, 'removed');
        return {};
      case 'revoked':
        if (!r.wasRinging && !r.wasAllowed) throw new AppError('NOT_FOUND', 'No such participant');
        await this.#store.unindex(p.userId, p.conferenceId);
        if (r.wasRinging) {
          this.#timers.disarm(p.conferenceId, { kind: 'ring', userId: p.userId });
          this.#afterAck(() => this.#inviteEnded(p.conferenceId, p.userId, 'cancelled'));
        }
        return {};
      case 'not_host':
        throw new AppError('NOT_HOST');
      default:
        throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
    }
  }

  async state(socket: HubSocket, p: Req<'conference:state'>): Promise<Res<'conference:state'>> {
    const { userId, sessionId } = socket.data;
    const { conf, allowed } = await this.#store.get(p.conferenceId, userId);
    if (!conf || (!allowed && !participantOf(conf, userId))) throw new AppError('ROOM_NOT_FOUND');
    return { conference: await this.#view(conf, userId, sessionId, allowed) };
  }

  async list(socket: HubSocket): Promise<Res<'conference:list'>> {
    const { userId, sessionId } = socket.data;
    const out: ConferenceView[] = [];
    for (const id of await this.#store.conferencesOf(userId)) {
      const { conf, allowed } = await this.#store.get(id, userId);
      if (!conf || conf.state === 'ended' || (!allowed && !participantOf(conf, userId))) {
        await this.#store.unindex(userId, id);
        continue;
      }
      if (participantOf(conf, userId) || invitationOf(conf, userId)) out.push(await this.#view(conf, userId, sessionId, allowed));
    }
    out.sort((a, b) => a.createdAt - b.createdAt);
    return { conferences: out };
  }

  // ---- Connections and accounts ----

  /** A device (re)connected: it resumes its conferences and rings for invitations still ringing. */
  onConnect(socket: HubSocket): void {
    this.#background(this.#onConnect(socket));
  }

  /** A socket dropped: a participant whose device has no socket left gets the reconnect grace period. */
  onDisconnect(socket: HubSocket): void {
    this.#background(this.#onDisconnect(socket.data.userId, socket.data.sessionId));
  }

  /** An account was erased: it leaves every conference and its invitations are withdrawn. */
  onUserDeleted(userId: string): void {
    this.#background(this.#onUserDeleted(userId));
  }

  async #onConnect(socket: HubSocket): Promise<void> {
    const { userId, sessionId } = socket.data;
    for (const id of await this.#store.conferencesOf(userId)) {
      const { conf, allowed } = await this.#store.get(id, userId);
      if (!conf || conf.state === 'ended') {
        await this.#store.unindex(userId, id);
        continue;
      }
      const me = participantOf(conf, userId);
      if (me && me.sessionId === sessionId) {
        const wasLost = await this.#store.back(id, userId, sessionId);
        if (wasLost) this.#timers.disarm(id, { kind: 'grace', userId });
        if (!socket.connected) return;
        const fresh = await this.#store.get(id, userId);
        if (!fresh.conf || fresh.conf.state === 'ended') continue;
        socket.emit('conference:resumed', { conference: await this.#view(fresh.conf, userId, sessionId, fresh.allowed || allowed) });
        if (wasLost) {
          this.#log.info({ conferenceId: id }, 'participant back within grace');
          await this.#broadcastParticipants(id);
        }
      } else {
        const invitation = invitationOf(conf, userId);
        if (!invitation || !socket.connected) continue;
        const inviter = await this.#ctx.accounts.get(invitation.invitedBy);
        socket.emit('conference:incoming', {
          conferenceId: id, inviter: party(invitation.invitedBy, inviter), hostId: conf.hostId, video: conf.video,
          participantCount: conf.participants.length, expiresAt: invitation.expiresAt,
        });
      }
    }
  }

  async #onDisconnect(userId: string, sessionId: string): Promise<void> {
    for (const id of await this.#store.conferencesOf(userId)) {
      const { conf } = await this.#store.get(id);
      const me = conf && conf.state === 'active' ? participantOf(conf, userId) : undefined;
      if (!me || me.sessionId !== sessionId) continue;
      if (await this.#isOnline(sessionId)) continue;
      const now = Date.now();
      if (!(await this.#store.lost(id, userId, sessionId, now, now + this.#graceMs))) continue;
      this.#timers.arm(id, { kind: 'grace', userId }, now + this.#graceMs);
      this.#log.info({ conferenceId: id }, 'participant lost; grace period started');
      // A reconnect racing the mark would have found nothing to resume: check again.
      if ((await this.#isOnline(sessionId).catch(() => false)) && (await this.#store.back(id, userId, sessionId))) {
        this.#timers.disarm(id, { kind: 'grace', userId });
        continue;
      }
      await this.#broadcastParticipants(id);
    }
  }

  async #onUserDeleted(userId: string): Promise<void> {
    for (const id of await this.#store.conferencesOf(userId)) {
      const r = await this.#store.leave(id, {
        userId, now: Date.now(), mode: 'erase', legReason: 'party_lost', legHangupBy: 'system', relayNode: await this.#nodeOf(id),
      });
      if (r.status === 'ok') await this.#afterLeft(id, userId, r, 'left');
      else if (r.status === 'revoked' && r.wasRinging) {
        this.#timers.disarm(id, { kind: 'ring', userId });
        await this.#inviteEnded(id, userId, 'cancelled');
      }
    }
    await this.#store.forgetUser(userId);
  }

  // ---- Timers ----

  async #onTimer(id: string, timer: ConferenceTimer): Promise<void> {
    const now = Date.now();
    switch (timer.kind) {
      case 'fact': {
        const claimed = await this.#store.claimFact(id, timer.factId, now);
        if (claimed.status === 'unclaimed') return;
        if (claimed.status === 'missing') {
          // Never expected (facts outlive their due entries): a call record is lost, say so loudly.
          this.#log.error({ conferenceId: id, factId: timer.factId }, 'conference fact claimed but missing; its call record is lost');
          return;
        }
        const pending = decodePendingFact(claimed.raw);
        if (!pending) {
          this.#log.error({ conferenceId: id, factId: timer.factId }, 'dropping a malformed conference fact');
          return;
        }
        this.#emitFact(toFact(pending));
        return;
      }
      case 'ring':
        if (await this.#store.unring(id, timer.userId, now, timer)) await this.#inviteEnded(id, timer.userId, 'timeout');
        return;
      case 'max': {
        const r = await this.#store.end(id, {
          now, reason: 'max_duration', confHangup: 'system', byUser: '', byReason: 'conference_ended',
          othersReason: 'conference_ended', othersHangup: 'system', timer, relayNode: await this.#nodeOf(id),
        });
        if (r.status === 'ok') await this.#afterEnded(id, r.participants, r.ringing, 'max_duration');
        return;
      }
      case 'grace': {
        const { conf } = await this.#store.get(id);
        const me = conf ? participantOf(conf, timer.userId) : undefined;
        if (me && (await this.#isOnline(me.sessionId).catch(() => false)) && (await this.#store.back(id, timer.userId, me.sessionId))) {
          await this.#broadcastParticipants(id);
          return;
        }
        // Claims the entry whatever the outcome, so a stale one does not come back every scan.
        const r = await this.#store.leave(id, {
          userId: timer.userId, now, mode: 'lost', legReason: 'party_lost', legHangupBy: 'system', timer, relayNode: await this.#nodeOf(id),
        });
        if (r.status === 'ok') {
          this.#log.info({ conferenceId: id }, 'participant did not come back; removed');
          await this.#afterLeft(id, timer.userId, r, 'lost');
        }
        return;
      }
    }
  }

  // ---- After transitions ----

  /** A participant is out: its leg's fact, its media, and everyone told (or the conference's end, if it was the last). */
  async #afterLeft(id: string, userId: string, r: LeftOk, reason: 'left' | 'removed' | 'lost'): Promise<void> {
    const p = r.participant;
    const now = Date.now();
    this.#timers.arm(id, { kind: 'fact', factId: p.legId }, now);
    this.#timers.disarm(id, { kind: 'grace', userId });
    await this.#removePeer(id, userId, p.deviceId);
    if (reason === 'removed') {
      this.#afterAck(() => this.#notify([rooms.session(p.sessionId)], 'conference:removed', { conferenceId: id, reason: 'host' }));
    }
    if (r.ended) {
      this.#log.info({ conferenceId: id }, 'last participant left; conference ended');
      await this.#afterEnded(id, [], r.ringing, 'empty');
      return;
    }
    this.#afterAck(async () => {
      const conf = await this.#store.get(id).then((x) => x.conf);
      if (!conf || conf.state === 'ended') return;
      this.#notify(this.#sessionsOf(conf), 'conference:participant-left', { conferenceId: id, userId, reason });
      await this.#broadcastParticipants(id);
    });
  }

  /** The conference is over: facts out, everyone told, the relay room closed. */
  async #afterEnded(id: string, participants: ParticipantRecord[], ringing: string[], reason: ConferenceEndReason): Promise<void> {
    const now = Date.now();
    for (const p of participants) {
      this.#timers.arm(id, { kind: 'fact', factId: p.legId }, now);
      this.#timers.disarm(id, { kind: 'grace', userId: p.userId });
    }
    this.#timers.arm(id, { kind: 'fact', factId: 'conf' }, now);
    this.#timers.disarm(id, { kind: 'max' });
    for (const uid of ringing) this.#timers.disarm(id, { kind: 'ring', userId: uid });
    this.#afterAck(() => {
      this.#notify(participants.map((p) => rooms.session(p.sessionId)), 'conference:ended', { conferenceId: id, reason });
      for (const uid of ringing) this.#notify([rooms.user(uid)], 'conference:invite-ended', { conferenceId: id, userId: uid, reason: 'ended' });
    });
    await Promise.all([...participants.map((p) => p.userId), ...ringing].map((uid) => this.#store.unindex(uid, id)));
    try {
      await this.#relay.media.closeRoom(id);
    } catch (err) {
      this.#log.warn({ conferenceId: id, err: err instanceof Error ? err.message : String(err) }, 'could not close the conference\'s relay room; the relay closes idle rooms itself');
    }
  }

  /** An invitation stopped ringing: the invitee's devices and the participants hear why. */
  async #inviteEnded(id: string, userId: string, reason: 'declined' | 'timeout' | 'cancelled'): Promise<void> {
    const conf = (await this.#store.get(id)).conf;
    const participants = conf && conf.state === 'active' ? this.#sessionsOf(conf) : [];
    this.#notify([rooms.user(userId), ...participants], 'conference:invite-ended', { conferenceId: id, userId, reason });
    await this.#broadcastParticipants(id);
  }

  async #ring(id: string, inviterId: string, inviter: Profile | null, userIds: string[], expiresAt: number): Promise<void> {
    const conf = (await this.#store.get(id)).conf;
    if (!conf || conf.state === 'ended') return;
    for (const uid of userIds) {
      if (!invitationOf(conf, uid)) continue;
      this.#notify([rooms.user(uid)], 'conference:incoming', {
        conferenceId: id, inviter: party(inviterId, inviter), hostId: conf.hostId, video: conf.video,
        participantCount: conf.participants.length, expiresAt,
      });
    }
  }

  async #broadcastParticipants(id: string): Promise<void> {
    const conf = (await this.#store.get(id)).conf;
    if (!conf || conf.state === 'ended') return;
    const { participants, invited } = await this.#lists(conf);
    this.#notify(this.#sessionsOf(conf), 'conference:participants', { conferenceId: id, hostId: conf.hostId, participants, invited });
  }

  /**
   * The relay says a track of a room started, stopped, or was paused or
   * resumed. Every hub hears it, so each one sends the new list only to its
   * own participant sockets: each device gets one copy whichever hub it is
   * on. Changes that come while a list is being built make it go out once
   * more afterwards, so this hub's last copy always shows the last change.
   */
  #onTracksChanged(roomId: string): void {
    if (this.#closed) return;
    if (this.#trackRefresh.has(roomId)) {
      this.#trackRefresh.set(roomId, true);
      return;
    }
    this.#trackRefresh.set(roomId, false);
    this.#background((async () => {
      try {
        do {
          this.#trackRefresh.set(roomId, false);
          await this.#sendParticipantsLocally(roomId);
        } while (this.#trackRefresh.get(roomId) === true && !this.#closed);
      } finally {
        this.#trackRefresh.delete(roomId);
      }
    })());
  }

  /** conference:participants to the participants connected to this hub process (nothing if it is not a running conference). */
  async #sendParticipantsLocally(id: string): Promise<void> {
    const conf = (await this.#store.get(id)).conf;
    if (!conf || conf.state === 'ended') return;
    const local = this.#ctx.io.of('/').adapter.rooms;
    const here = this.#sessionsOf(conf).filter((room) => (local.get(room)?.size ?? 0) > 0);
    if (here.length === 0) return;
    const { participants, invited } = await this.#lists(conf);
    this.#notify(here, 'conference:participants', { conferenceId: id, hostId: conf.hostId, participants, invited }, { local: true });
  }

  /** Takes a conference that never got going away again (its 1:1 call ended before it could move). */
  async #discard(id: string, userIds: string[]): Promise<void> {
    await this.#store.discard(id);
    await Promise.all(userIds.map((uid) => this.#store.unindex(uid, id)));
    await this.#relay.media.closeRoom(id).catch(() => undefined);
  }

  async #removePeer(id: string, userId: string, deviceId: string): Promise<void> {
    try {
      await this.#relay.media.removePeer(id, userId, deviceId);
    } catch (err) {
      // Membership is gone already; the relay drops a peer whose client left on its own.
      await this.#relay.membership.remove(id, userId, deviceId).catch(() => undefined);
      this.#log.warn({ conferenceId: id, err: err instanceof Error ? err.message : String(err) }, 'could not take a device off the relay room');
    }
  }

  // ---- Reading ----

  async #read(id: string): Promise<ConferenceRecord> {
    const { conf } = await this.#store.get(id);
    if (!conf) throw new AppError('ROOM_NOT_FOUND');
    return conf;
  }

  /** A conference the user may see (invited, participant, or former participant); ROOM_NOT_FOUND otherwise. */
  async #visible(id: string, userId: string): Promise<ConferenceRecord> {
    const { conf, allowed } = await this.#store.get(id, userId);
    if (!conf || (!allowed && !participantOf(conf, userId))) throw new AppError('ROOM_NOT_FOUND');
    return conf;
  }

  /** As #visible, and still running. */
  async #live(id: string, userId: string): Promise<ConferenceRecord> {
    const conf = await this.#visible(id, userId);
    if (conf.state === 'ended') throw new AppError('ROOM_NOT_FOUND', 'The conference has ended');
    return conf;
  }

  async #view(conf: ConferenceRecord, userId: string, sessionId: string, allowed: boolean): Promise<ConferenceView> {
    const { participants, invited } = await this.#lists(conf);
    return {
      conferenceId: conf.conferenceId,
      roomId: conf.conferenceId,
      state: conf.state,
      hostId: conf.hostId,
      video: conf.video,
      maxParticipants: conf.maxParticipants,
      role: roleIn(conf, userId, allowed),
      thisDevice: participantOf(conf, userId)?.sessionId === sessionId,
      participants,
      invited,
      createdAt: conf.createdAt,
      endedAt: conf.endedAt ?? null,
      endReason: conf.endReason ?? null,
    };
  }

  /** Participants with their track states (from the relay room) and ringing invitations, with profiles. */
  async #lists(conf: ConferenceRecord): Promise<{ participants: ConferenceParticipant[]; invited: ConferenceInvitee[] }> {
    const [producers, profiles] = await Promise.all([
      conf.state === 'active' && conf.participants.length ? this.#producers(conf.conferenceId) : Promise.resolve([]),
      this.#profiles([...conf.participants.map((p) => p.userId), ...conf.ringing.map((i) => i.userId)]),
    ]);
    const participants = conf.participants.map((p): ConferenceParticipant => {
      const peerId = peerIdOf(p.userId, p.deviceId);
      const prof = profiles.get(p.userId) ?? null;
      return {
        userId: p.userId, displayName: prof?.displayName ?? null,
        host: p.userId === conf.hostId, joinedAt: p.joinedAt, connection: p.lostAt === undefined ? 'online' : 'lost',
        audio: trackState(producers, peerId, 'audio'), video: trackState(producers, peerId, 'video'),
      };
    });
    const invited = conf.ringing.map((i): ConferenceInvitee => {
      const prof = profiles.get(i.userId) ?? null;
      return {
        userId: i.userId, displayName: prof?.displayName ?? null,
        invitedBy: i.invitedBy, invitedAt: i.invitedAt, expiresAt: i.expiresAt,
      };
    });
    return { participants, invited };
  }

  async #producers(roomId: string): Promise<ProducerInfo[]> {
    try {
      return (await this.#relay.service.request(roomId, 'room.producers', {})).producers;
    } catch (err) {
      // No room on a relay right now (nobody joined the media, or it is being recreated): no tracks.
      this.#log.debug({ roomId, err: err instanceof Error ? err.message : String(err) }, 'room producers unavailable');
      return [];
    }
  }

  async #profiles(userIds: string[]): Promise<Map<string, Profile | null>> {
    const unique = [...new Set(userIds)];
    const got = await Promise.all(unique.map((uid) => this.#ctx.accounts.get(uid)));
    return new Map(unique.map((uid, i) => [uid, got[i] ?? null]));
  }

  /** The node the conference's room is on now (empty if unknown: the stored one is used). */
  async #nodeOf(id: string): Promise<string> {
    return (await this.#relay.service.nodeOf(id).catch(() => null)) ?? '';
  }

  #sessionsOf(conf: ConferenceRecord, exceptUser?: string): string[] {
    return conf.participants.filter((p) => p.userId !== exceptUser).map((p) => rooms.session(p.sessionId));
  }

  async #isOnline(sessionId: string): Promise<boolean> {
    return (await this.#ctx.io.in(rooms.session(sessionId)).fetchSockets()).length > 0;
  }

  // ---- Input ----

  /** The answered 1:1 call a party wants to turn into a conference, checked like any call action. */
  async #callToMove(callId: string, userId: string, sessionId: string): Promise<{
    callId: string; role: 'caller' | 'callee'; own: { platform: string | undefined; appVersion: string | undefined }; other: InitialParticipant;
  }> {
    const call = this.#ctx.calls ? await this.#ctx.calls.get(callId) : null;
    const role = call?.caller.userId === userId ? 'caller' : call?.callee.userId === userId ? 'callee' : null;
    if (!call || !role) throw new AppError('CALL_NOT_FOUND');
    if (call.state !== 'answered' && call.state !== 'connected') {
      throw new AppError('CALL_INVALID_STATE', 'Only an answered call can become a conference');
    }
    if (call[role].sessionId !== sessionId) throw new AppError('CALL_INVALID_STATE', 'The call belongs to another of your devices');
    const o = call[role === 'caller' ? 'callee' : 'caller'];
    if (!o.sessionId || !o.deviceId) throw new AppError('CALL_INVALID_STATE');
    return {
      callId, role,
      own: { platform: call[role].platform, appVersion: call[role].appVersion },
      other: { userId: o.userId, sessionId: o.sessionId, deviceId: o.deviceId, platform: o.platform, appVersion: o.appVersion },
    };
  }

  /**
   * Invitees as user ids, in order, without duplicates or the excluded ids.
   * Unknown users and numbers fail the whole request (CALLEE_NOT_FOUND,
   * PHONE_INVALID, with `details.index`) before anyone rings.
   */
  async #resolve(targets: Target[], inviter: Profile | null, exclude: (string | undefined)[]): Promise<string[]> {
    const out: string[] = [];
    const region = inviter ? PhoneNumbers.countryOf(inviter.phone) : undefined;
    for (const [index, t] of targets.entries()) {
      let uid: string | null;
      if ('userId' in t) {
        uid = (await this.#ctx.accounts.get(t.userId)) ? t.userId : null;
      } else {
        const compact = t.phone.replace(/[\s().-]/g, '');
        const e164 = E164.safeParse(compact).success ? compact : PhoneNumbers.normaliseContact(t.phone, region);
        if (!e164) throw new AppError('PHONE_INVALID', undefined, { details: { index } });
        // Inviting by number is contact discovery through another door: charged like call:invite.
        if (!inviter) throw new AppError('ACCOUNT_DELETED');
        uid = await this.#ctx.calls!.lookupByPhone(inviter.userId, e164);
      }
      if (!uid) throw new AppError('CALLEE_NOT_FOUND', undefined, { details: { index } });
      if (!exclude.includes(uid) && !out.includes(uid)) out.push(uid);
    }
    return out;
  }

  // ---- Output ----

  #emitFact(fact: ReturnType<typeof toFact>): void {
    this.#log.info({ callId: fact.callId, kind: fact.kind, endReason: fact.endReason }, 'conference fact');
    try {
      this.#ctx.events.emit('call:ended', fact);
    } catch (err) {
      this.#log.error({ err, callId: fact.callId }, 'call-ended listener failed');
    }
  }

  /** Emits to sockets in these rooms on every hub process (`local`: on this one only). */
  #notify<K extends ServerNoticeName>(to: string[], event: K, payload: NoticePayload<K>, opts: { local?: boolean } = {}): void {
    // An empty room list would broadcast to every socket.
    if (to.length === 0) return;
    const op = (opts.local ? this.#ctx.io.local : this.#ctx.io).to(to);
    (op.emit as (ev: string, p: unknown) => boolean).call(op, event, payload);
  }

  /** Runs after the current request's ack is written, so a client knows the conference id before any notice about it. */
  #afterAck(fn: () => void | Promise<void>): void {
    this.#background(new Promise<void>((resolve) => setImmediate(resolve)).then(fn));
  }

  #background(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => this.#log.error({ err }, 'conference background work failed'));
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }
}

function party(userId: string, profile: Profile | null): CallParty {
  return { userId, phone: profile?.phone ?? null, displayName: profile?.displayName ?? null };
}

function trackState(producers: ProducerInfo[], peerId: string, kind: 'audio' | 'video'): TrackState {
  const mine = producers.filter((p) => p.peerId === peerId && p.kind === kind);
  if (mine.length === 0) return 'off';
  return mine.some((p) => !p.paused) ? 'on' : 'muted';
}
