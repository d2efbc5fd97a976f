import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { AppError } from '../../shared/protocol/errors.js';
import { E164 } from '../../shared/protocol/common.js';
import {
  EARLY_SIGNALS_MAX, type CallEndReason, type CallParty, type CallRole, type CallSignal, type CallView,
  type callsRequests,
} from '../../shared/protocol/calls.js';
import type { ServerNoticeName, ServerNotices } from '../../shared/protocol/events.js';
import type { HubContext } from '../HubContext.js';
import type { Logger } from '../../shared/runtime/log.js';
import { PhoneNumbers } from '../identity/PhoneNumbers.js';
import type { Profile } from '../identity/Accounts.js';
import { RateLimiter } from '../identity/RateLimiter.js';
import { AddressBook } from '../contacts/AddressBook.js';
import { rooms, type HubSocket } from '../socket/SocketGateway.js';
import type { CallRelayFallback } from './CallRelayFallback.js';
import {
  ANSWERED_STATES, RINGING_STATES, endedNotices, otherRole, requireBoundDevice, requireNotEnded, requireParty,
  roleOf, stateError, toFact, toView, type CallRecord, type CallTimer, type HangupBy,
} from './CallSession.js';
import { CalleeLookup } from './CalleeLookup.js';
import { CallStore, type EndParams } from './CallStore.js';
import { CallTimers } from './CallTimers.js';
import { IceServers } from './IceServers.js';
import { Presence } from './Presence.js';

type Req<K extends keyof typeof callsRequests> = z.output<(typeof callsRequests)[K]['request']>;
type Res<K extends keyof typeof callsRequests> = z.input<(typeof callsRequests)[K]['response']>;
type NoticePayload<K extends ServerNoticeName> = z.output<ServerNotices[K]['payload']>;

/** An ended call stays readable this long, so late requests learn it ended rather than that it never existed. */
const ENDED_RETENTION_MS = 10 * 60_000;

export const newCallId = (): string => `c${randomBytes(12).toString('base64url')}`;

/**
 * 1:1 calls on one hub process: the socket handlers, the reactions to
 * connects, disconnects and timers, and the service other subsystems use
 * through `ctx.calls` (relay fallback hook, relay marking, ending a call).
 * All state lives in Redis (CallStore); any hub can act on any call.
 */
export class CallService {
  readonly #ctx: HubContext;
  readonly #log: Logger;
  readonly #store: CallStore;
  readonly #timers: CallTimers;
  readonly #presence: Presence;
  readonly #ice: IceServers;
  readonly #lookup: CalleeLookup;
  readonly #ringMs: number;
  readonly #connectMs: number;
  readonly #graceMs: number;
  readonly #maxMs: number;
  /** Background work (post-ack notices, disconnect handling, relay moves), awaited on close. */
  readonly #pending = new Set<Promise<unknown>>();
  #fallback: CallRelayFallback | undefined;
  #closed = false;

  constructor(ctx: HubContext) {
    const c = ctx.config;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ sub: 'calls' });
    this.#ringMs = c.CALL_RING_TIMEOUT_S * 1000;
    this.#connectMs = c.CALL_CONNECT_TIMEOUT_S * 1000;
    this.#graceMs = c.CALL_RECONNECT_GRACE_S * 1000;
    this.#maxMs = c.CALL_MAX_DURATION_S * 1000;
    this.#store = new CallStore(ctx.redis, {
      activeTtlMs: this.#maxMs + this.#ringMs + 10 * 60_000,
      endedTtlMs: ENDED_RETENTION_MS,
      factDelayMs: c.CALL_FINAL_REPORT_S * 1000,
    });
    this.#timers = new CallTimers(this.#store, (id, t) => this.#onTimer(id, t), this.#log, { scanIntervalMs: 1000, batch: 100 });
    this.#presence = new Presence(ctx.io);
    this.#lookup = new CalleeLookup(
      { redis: ctx.redis, accounts: ctx.accounts, book: new AddressBook(ctx.redis), hasher: ctx.phoneHasher, limiter: new RateLimiter(ctx.redis) },
      { newNumbersPerDay: c.DISCOVERY_NEW_NUMBERS_PER_DAY },
    );
    this.#ice = new IceServers({
      stunUrls: c.STUN_URLS, turnUrls: c.TURN_URLS, turnSecret: c.TURN_SECRET, ttlSeconds: c.TURN_TTL_S,
    });
  }

  /**
   * The account behind a number another feature dials (conference invites),
   * charged to the asking user's discovery quota exactly like call:invite.
   */
  lookupByPhone(userId: string, e164: string): Promise<string | null> {
    return this.#lookup.byPhone(userId, e164);
  }

  get iceServers(): IceServers {
    return this.#ice;
  }

  start(): void {
    this.#timers.start();
  }

  /** Stops timers and waits for in-flight background work. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.close();
    await Promise.allSettled([...this.#pending]);
  }

  // ---- For other subsystems (ctx.calls) ----

  /** Installs (or removes) the hook that moves calls with failed direct media onto a relay. */
  setRelayFallback(fallback: CallRelayFallback | undefined): void {
    this.#fallback = fallback;
  }

  get(callId: string): Promise<CallRecord | null> {
    return this.#store.get(callId);
  }

  /** Records that a call's media now goes through a relay node (the fact's kind becomes `relayed`). */
  async markRelayed(callId: string, relayNode: string): Promise<boolean> {
    return this.#store.setFields(callId, 'live', { relayed: '1', relayNode });
  }

  /** Ends a live call from outside (relay failure, operator); false if it had already ended. */
  async end(callId: string, reason: CallEndReason, hangupBy: HangupBy = 'system'): Promise<boolean> {
    const call = await this.#store.get(callId);
    if (!call) return false;
    return (await this.#end(call, { reason, hangupBy, allowed: '*', now: Date.now() })) !== null;
  }

  // ---- Socket requests ----

  async invite(socket: HubSocket, p: Req<'call:invite'>): Promise<Res<'call:invite'>> {
    const { userId, sessionId, deviceId } = socket.data;
    const callerProfile = await this.#ctx.accounts.get(userId);
    // The caller's own busy slot first: a busy caller learns nothing about the callee (see #resolveCallee).
    const busy = await this.#ownCall(userId);
    const { calleeId, byPhone } = await this.#resolveCallee(p.to, userId, callerProfile, busy);
    const calleeProfile = await this.#ctx.accounts.get(calleeId);
    if (!calleeProfile) throw new AppError('CALLEE_NOT_FOUND');
    // The callee's number goes back only to a caller who dialled it; by user id, only the id and display name.
    const calleeParty = party(calleeId, calleeProfile, { phone: byPhone });

    const callId = newCallId();
    const now = Date.now();
    const ringDueAt = now + this.#ringMs;
    const result = await this.#store.invite({
      callId, callerId: userId, calleeId, callerSession: sessionId, callerDevice: deviceId, video: p.video,
      offer: p.sdp, platform: p.client?.platform, appVersion: p.client?.appVersion, hubId: this.#ctx.hubId,
      calleeByPhone: byPhone, now, ringDueAt, connectDueAt: now + this.#connectMs, maxDueAt: now + this.#maxMs,
      factDueAt: now + this.#ctx.config.CALL_FINAL_REPORT_S * 1000,
    });

    switch (result.kind) {
      case 'caller_busy':
        this.#background(this.#auditStale(result.otherCallId));
        throw busyError(result.otherCallId);

      case 'busy': {
        this.#log.info({ callId, userId, calleeId }, 'call refused: callee busy');
        this.#background(this.#auditStale(result.otherCallId));
        const call = await this.#store.get(callId);
        if (call) this.#afterAck(() => this.#afterEnded(call));
        return {
          callId, role: 'caller', state: 'ended', endReason: 'busy', glare: false,
          peer: calleeParty, iceServers: [],
        };
      }

      case 'glare': {
        // The callee was already calling us: that call is now answered on this device. Its caller
        // (our peer) showed us their number when it rang, so the full party goes back.
        const call = await this.#store.get(result.callId);
        if (!call) throw new AppError('CALL_NOT_FOUND');
        this.#log.info({ callId: call.callId, userId }, 'glare: crossing invite answered the existing call');
        this.#timers.arm(call.callId, 'connect', now + this.#connectMs);
        const [offer, early] = await Promise.all([this.#store.offer(call.callId), this.#store.earlySignals(call.callId)]);
        this.#afterAck(() => this.#announceAnswer(call, sessionId, undefined));
        return {
          callId: call.callId, role: 'callee', state: 'answered', glare: true,
          peer: party(calleeId, calleeProfile), ...(offer ? { sdp: offer } : {}),
          candidates: early.flatMap((s) => (s.type === 'candidate' ? [s.candidate] : [])),
          iceServers: this.#ice.forClient(),
        };
      }

      case 'created': {
        this.#timers.arm(callId, 'ring', ringDueAt);
        this.#timers.arm(callId, 'max', now + this.#maxMs);
        const online = await this.#presence.sessionsOf(calleeId).catch((err: unknown) => {
          this.#log.warn({ err, callId }, 'presence lookup failed; the call rings when a device shows up');
          return [] as string[];
        });
        const ringing = online.length > 0 && (await this.#store.markRinging(callId, online, now, this.#ringMs)) === 'ringing';
        this.#log.info({ callId, userId, calleeId, devices: online.length }, 'call created');
        this.#afterAck(() => {
          if (ringing) this.#notify(rooms.session(sessionId), 'call:ringing', { callId });
          this.#notify(rooms.user(calleeId), 'call:incoming', {
            callId, caller: party(userId, callerProfile), video: p.video, ...(p.sdp ? { sdp: p.sdp } : {}),
            candidates: [], candidatesComplete: false, iceServers: this.#ice.forClient(), expiresAt: ringDueAt,
          });
        });
        return {
          callId, role: 'caller', state: ringing ? 'ringing' : 'inviting', glare: false,
          peer: calleeParty, iceServers: this.#ice.forClient(),
        };
      }
    }
  }

  async accept(socket: HubSocket, p: Req<'call:accept'>): Promise<Res<'call:accept'>> {
    const { userId, sessionId, deviceId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    if (role !== 'callee') throw new AppError('CALL_INVALID_STATE', 'Only the callee can answer');
    const now = Date.now();
    const r = await this.#store.accept({
      callId: call.callId, userId, sessionId, deviceId, now, connectDueAt: now + this.#connectMs,
      platform: p.client?.platform, appVersion: p.client?.appVersion,
    });
    switch (r) {
      case 'not_found':
        throw new AppError('CALL_NOT_FOUND');
      case 'answered':
        throw new AppError('CALL_ALREADY_ANSWERED');
      case 'ended':
        throw stateError(await this.#store.get(call.callId));
      case 'mine':
        return { callId: call.callId, iceServers: this.#ice.forClient() };
      case 'ok':
        this.#log.info({ callId: call.callId }, 'call answered');
        this.#timers.arm(call.callId, 'connect', now + this.#connectMs);
        this.#afterAck(() => this.#announceAnswer(call, sessionId, p.sdp));
        return { callId: call.callId, iceServers: this.#ice.forClient() };
    }
  }

  async reject(socket: HubSocket, p: Req<'call:reject'>): Promise<Res<'call:reject'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    if (role !== 'callee') throw new AppError('CALL_INVALID_STATE', 'Only the callee can decline; use call:cancel');
    requireNotEnded(call);
    if (call.callee.sessionId !== undefined) {
      if (call.callee.sessionId === sessionId) throw new AppError('CALL_INVALID_STATE', 'The call is answered; use call:hangup');
      throw new AppError('CALL_ALREADY_ANSWERED');
    }
    const now = Date.now();
    if (p.reason === 'declined') {
      const ended = await this.#end(call, { reason: 'declined', hangupBy: 'callee', allowed: RINGING_STATES, endedBySession: sessionId, now });
      if (!ended) throw stateError(await this.#store.get(call.callId));
      return {};
    }
    // Busy on this device only: the call keeps ringing elsewhere, and ends busy once no device rings.
    await this.#store.stopRinging(call.callId, sessionId);
    const ended = await this.#end(call, { reason: 'busy', hangupBy: 'callee', allowed: RINGING_STATES, requireNoRinging: true, now });
    if (!ended) {
      const after = await this.#store.get(call.callId);
      if (!after || !RINGING_STATES.includes(after.state)) throw stateError(after);
    }
    return {};
  }

  async cancel(socket: HubSocket, p: Req<'call:cancel'>): Promise<Res<'call:cancel'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    if (role !== 'caller') throw new AppError('CALL_INVALID_STATE', 'Only the caller can cancel; use call:reject');
    requireNotEnded(call);
    requireBoundDevice(call, role, sessionId);
    const ended = await this.#end(call, { reason: 'cancelled', hangupBy: 'caller', allowed: RINGING_STATES, now: Date.now() });
    if (!ended) throw stateError(await this.#store.get(call.callId));
    return {};
  }

  async hangup(socket: HubSocket, p: Req<'call:hangup'>): Promise<Res<'call:hangup'>> {
    const { userId, sessionId } = socket.data;
    let { call, role } = requireParty(await this.#store.get(p.callId), userId);
    // Two rounds: a hangup racing an answer is retried as the end of the answered call.
    for (let round = 0; round < 2; round++) {
      requireNotEnded(call);
      const ringing = RINGING_STATES.includes(call.state);
      if (ringing && role === 'callee') throw new AppError('CALL_INVALID_STATE', 'The call is not answered; use call:reject');
      requireBoundDevice(call, role, sessionId);
      const ended = await this.#end(call, {
        reason: ringing ? 'cancelled' : 'completed', hangupBy: role, allowed: ringing ? RINGING_STATES : ANSWERED_STATES, now: Date.now(),
      });
      if (ended) return {};
      const after = await this.#store.get(call.callId);
      if (!after) throw new AppError('CALL_NOT_FOUND');
      ({ call, role } = requireParty(after, userId));
    }
    throw stateError(call);
  }

  async signal(socket: HubSocket, p: Req<'call:signal'>): Promise<Res<'call:signal'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    requireNotEnded(call);
    requireBoundDevice(call, role, sessionId);
    if (role === 'callee') {
      this.#notify(rooms.session(call.caller.sessionId!), 'call:signal', p);
      return {};
    }
    if (call.callee.sessionId !== undefined) {
      this.#notify(rooms.session(call.callee.sessionId), 'call:signal', p);
      return {};
    }
    // Before the answer the caller's signals go to every ringing device of the
    // callee, and are kept for devices that come online while it rings.
    await this.#keepEarly(call, p);
    this.#notify(rooms.user(call.callee.userId), 'call:signal', p);
    return {};
  }

  async mediaState(socket: HubSocket, p: Req<'call:media-state'>): Promise<Res<'call:media-state'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    requireNotEnded(call);
    requireBoundDevice(call, role, sessionId);
    const media = { audio: p.audio, video: p.video };
    if (!(await this.#store.setFields(call.callId, 'live', { [`${role}.media`]: JSON.stringify(media) }))) throw stateError(await this.#store.get(call.callId));
    const peerSession = call[otherRole(role)].sessionId;
    if (peerSession) this.#notify(rooms.session(peerSession), 'call:media-state', { callId: call.callId, ...media });
    return {};
  }

  async report(socket: HubSocket, p: Req<'call:report'>): Promise<Res<'call:report'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    requireBoundDevice(call, role, sessionId);
    switch (p.event) {
      case 'connected': {
        if (!ANSWERED_STATES.includes(call.state)) throw stateError(call);
        const r = await this.#store.connected(call.callId, role, p.path.local, Date.now());
        if (r === 'connected') this.#log.info({ callId: call.callId, local: p.path.local, remote: p.path.remote }, 'call media connected');
        else if (r !== 'recorded') throw stateError(await this.#store.get(call.callId));
        return {};
      }
      case 'ice-failed':
        if (!ANSWERED_STATES.includes(call.state)) throw stateError(call);
        this.#log.info({ callId: call.callId, role }, 'client reports ICE failure');
        this.#background(this.#mediaFailed(call, undefined));
        return {};
      case 'quality': {
        const quality: Record<string, string | number> = {};
        if (p.codec !== undefined) quality.codec = p.codec;
        if (p.rttMs !== undefined) quality.rttMs = p.rttMs;
        if (p.jitterMs !== undefined) quality.jitterMs = p.jitterMs;
        if (p.loss !== undefined) quality.loss = p.loss;
        const ok = await this.#store.setFields(call.callId, 'report', { [`${role}.quality`]: JSON.stringify(quality) });
        if (!ok) throw new AppError('CALL_INVALID_STATE', 'The call has ended and its record is closed');
        return {};
      }
    }
  }

  async list(socket: HubSocket): Promise<Res<'call:list'>> {
    const { userId, sessionId } = socket.data;
    const callId = await this.#store.currentCallId(userId);
    const call = callId ? await this.#store.get(callId) : null;
    const role = call ? roleOf(call, userId) : null;
    if (!call || !role || call.state === 'ended') return { calls: [] };
    return { calls: [await this.#view(call, role, sessionId)] };
  }

  async state(socket: HubSocket, p: Req<'call:state'>): Promise<Res<'call:state'>> {
    const { userId, sessionId } = socket.data;
    const { call, role } = requireParty(await this.#store.get(p.callId), userId);
    return { call: await this.#view(call, role, sessionId) };
  }

  // ---- Connections ----

  /** A device (re)connected: resume its call, or ring it if its user is being called. */
  onConnect(socket: HubSocket): void {
    this.#background(this.#onConnect(socket));
  }

  /** A socket dropped: if it was its device's last socket and that device carries a call, start the grace period. */
  onDisconnect(socket: HubSocket): void {
    this.#background(this.#onDisconnect(socket.data.userId, socket.data.sessionId));
  }

  /**
   * An account was erased: its live call ends (`party_lost`), then every call
   * record still naming the user is deleted, with the numbers it looked up by
   * calling. A record whose fact is still pending (the final-report window)
   * has its fact emitted at once, before the record goes: the CDR writer
   * pseudonymises it, and nothing waits in Redis with the user id for it.
   */
  onUserDeleted(userId: string): void {
    this.#background(this.#erase(userId));
  }

  async #erase(userId: string): Promise<void> {
    const current = await this.#store.currentCallId(userId);
    const ids = new Set([...(current ? [current] : []), ...(await this.#store.callsOf(userId))]);
    for (const callId of ids) {
      // A live call is ended first; one that races into being ended elsewhere is taken as it is.
      for (let round = 0; round < 3; round++) {
        const r = await this.#store.erase(callId, userId, Date.now());
        if (r.kind === 'fact') this.#emitFact(r.call);
        if (r.kind !== 'live') break;
        const call = await this.#store.get(callId);
        if (call) await this.#end(call, { reason: 'party_lost', hangupBy: 'system', allowed: '*', now: Date.now() });
      }
    }
    await Promise.all([this.#store.forgetUser(userId), this.#lookup.forget(userId)]);
    this.#log.info({ userId, calls: ids.size }, 'call records of an erased account removed');
  }

  async #onConnect(socket: HubSocket): Promise<void> {
    const { userId, sessionId } = socket.data;
    const callId = await this.#store.currentCallId(userId);
    const call = callId ? await this.#store.get(callId) : null;
    const role = call ? roleOf(call, userId) : null;
    if (!call || !role || call.state === 'ended' || !socket.connected) return;

    if (call[role].sessionId === sessionId) {
      const wasLost = await this.#store.back(call.callId, role, sessionId);
      const fresh = (await this.#store.get(call.callId)) ?? call;
      if (fresh.state === 'ended') return;
      socket.emit('call:resumed', { call: await this.#view(fresh, role, sessionId) });
      if (wasLost) {
        this.#log.info({ callId: call.callId, role }, 'party reconnected within grace');
        const peer = fresh[otherRole(role)].sessionId;
        if (peer) this.#notify(rooms.session(peer), 'call:peer-connection', { callId: call.callId, state: 'resumed' });
      }
      return;
    }

    if (role === 'callee' && call.callee.sessionId === undefined && RINGING_STATES.includes(call.state)) {
      // A callee device came online while the call rings (e.g. woken by a push).
      const r = await this.#store.markRinging(call.callId, [sessionId], Date.now(), this.#ringMs);
      if (r === 'gone') return;
      if (r === 'ringing' && call.caller.sessionId) this.#notify(rooms.session(call.caller.sessionId), 'call:ringing', { callId: call.callId });
      const [callerProfile, offer, early] = await Promise.all([
        this.#ctx.accounts.get(call.caller.userId), this.#store.offer(call.callId), this.#store.earlySignals(call.callId),
      ]);
      socket.emit('call:incoming', {
        callId: call.callId, caller: party(call.caller.userId, callerProfile), video: call.video,
        ...(offer ? { sdp: offer } : {}),
        candidates: early.flatMap((s) => (s.type === 'candidate' ? [s.candidate] : [])),
        candidatesComplete: early.some((s) => s.type === 'end-of-candidates'),
        iceServers: this.#ice.forClient(), expiresAt: call.ringExpiresAt,
      });
    }
  }

  async #onDisconnect(userId: string, sessionId: string): Promise<void> {
    const callId = await this.#store.currentCallId(userId);
    const call = callId ? await this.#store.get(callId) : null;
    const role = call ? roleOf(call, userId) : null;
    if (!call || !role || call.state === 'ended' || call[role].sessionId !== sessionId) return;
    if (await this.#presence.isOnline(sessionId)) return;
    await this.#markLost(call, role, sessionId);
  }

  /** Starts a party's grace period; re-checks presence afterwards so a reconnect racing the mark is not missed. */
  async #markLost(call: CallRecord, role: CallRole, sessionId: string): Promise<void> {
    const now = Date.now();
    if (!(await this.#store.lost(call.callId, role, sessionId, now, now + this.#graceMs))) return;
    this.#timers.arm(call.callId, `grace:${role}`, now + this.#graceMs);
    this.#log.info({ callId: call.callId, role }, 'party lost; grace period started');
    const peer = call[otherRole(role)].sessionId;
    if (peer) this.#notify(rooms.session(peer), 'call:peer-connection', { callId: call.callId, state: 'lost' });
    if (await this.#presence.isOnline(sessionId).catch(() => false)) {
      if (await this.#store.back(call.callId, role, sessionId)) {
        if (peer) this.#notify(rooms.session(peer), 'call:peer-connection', { callId: call.callId, state: 'resumed' });
      }
    }
  }

  /**
   * A busy slot points at a call whose bound devices may have vanished with
   * a crashed hub (which never saw their disconnects): give each offline
   * device the same grace period a dropped socket gets.
   */
  async #auditStale(callId: string): Promise<void> {
    const call = await this.#store.get(callId);
    if (!call || call.state === 'ended') return;
    for (const role of ['caller', 'callee'] as const) {
      const sid = call[role].sessionId;
      if (!sid || call[role].lostAt !== undefined) continue;
      if (!(await this.#presence.isOnline(sid))) await this.#markLost(call, role, sid);
    }
  }

  // ---- Timers ----

  async #onTimer(callId: string, timer: CallTimer): Promise<void> {
    const now = Date.now();
    if (timer === 'fact') {
      const call = await this.#store.claimFact(callId, now);
      if (call === 'missing') this.#log.error({ callId }, 'call fact claimed but the ended call had expired; its call record is lost');
      else if (call) this.#emitFact(call);
      return;
    }
    const call = await this.#store.get(callId);
    if (!call) {
      await this.#store.dropTimer(`${callId}|${timer}`);
      return;
    }
    switch (timer) {
      case 'ring':
        await this.#end(call, { reason: 'no_answer', hangupBy: 'system', allowed: RINGING_STATES, timer, now });
        return;
      case 'max':
        await this.#end(call, { reason: 'completed', hangupBy: 'system', allowed: '*', timer, now });
        return;
      case 'connect':
        await this.#mediaFailed(call, 'connect');
        return;
      case 'grace:caller':
      case 'grace:callee': {
        const role: CallRole = timer === 'grace:caller' ? 'caller' : 'callee';
        const sid = call[role].sessionId;
        if (sid && (await this.#presence.isOnline(sid).catch(() => false)) && (await this.#store.back(callId, role, sid))) {
          const peer = call[otherRole(role)].sessionId;
          if (peer) this.#notify(rooms.session(peer), 'call:peer-connection', { callId, state: 'resumed' });
          return;
        }
        await this.#end(call, { reason: 'party_lost', hangupBy: 'system', allowed: '*', timer, requireField: `${role}.lostAt`, now });
        return;
      }
    }
  }

  /** Direct media failed: move to the relay once if a fallback is installed, else end the call failed. */
  async #mediaFailed(call: CallRecord, timer: 'connect' | undefined): Promise<void> {
    const now = Date.now();
    const fallback = this.#fallback;
    const r = await this.#store.mediaFailed(call.callId, {
      now, allowed: timer ? ['answered'] : ANSWERED_STATES, hasFallback: fallback !== undefined, newConnectDueAt: now + this.#connectMs,
      ...(timer ? { timer } : {}),
    });
    if (r === 'noop') return;
    if (r === 'fallback' && fallback) {
      this.#timers.arm(call.callId, 'connect', now + this.#connectMs);
      this.#log.info({ callId: call.callId }, 'direct media failed; moving the call to a relay');
      try {
        const { relayNode } = await fallback.moveToRelay({
          callId: call.callId, video: call.video,
          caller: { userId: call.caller.userId, sessionId: call.caller.sessionId!, deviceId: call.caller.deviceId! },
          callee: { userId: call.callee.userId, sessionId: call.callee.sessionId!, deviceId: call.callee.deviceId! },
        });
        await this.markRelayed(call.callId, relayNode);
        return;
      } catch (err) {
        this.#log.warn({ err, callId: call.callId }, 'relay fallback failed; ending the call');
      }
    }
    await this.#end(call, { reason: 'failed', hangupBy: 'system', allowed: ANSWERED_STATES, now: Date.now() });
  }

  // ---- Ending and telling ----

  /** Ends a call if the conditions hold; the winner tells every device and schedules the fact. */
  async #end(call: CallRecord, p: EndParams): Promise<CallRecord | null> {
    const ended = await this.#store.end(call, p);
    if (!ended) return null;
    this.#log.info({ callId: ended.callId, reason: ended.endReason, by: ended.hangupBy }, 'call ended');
    this.#afterAck(() => this.#afterEnded(ended));
    return ended;
  }

  #afterEnded(call: CallRecord): void {
    for (const n of endedNotices(call)) this.#notify(n.room, 'call:ended', { callId: call.callId, reason: n.reason }, n.except);
    this.#timers.arm(call.callId, 'fact', (call.endedAt ?? Date.now()) + this.#ctx.config.CALL_FINAL_REPORT_S * 1000);
  }

  #emitFact(call: CallRecord): void {
    const fact = toFact(call);
    this.#log.info({ callId: fact.callId, disposition: fact.disposition, kind: fact.kind }, 'call-ended fact');
    try {
      this.#ctx.events.emit('call:ended', fact);
    } catch (err) {
      this.#log.error({ err, callId: call.callId }, 'call-ended listener failed');
    }
  }

  /** The caller hears the answer; the callee's other devices stop ringing. */
  #announceAnswer(call: CallRecord, answeredOn: string, sdp: string | undefined): void {
    if (call.caller.sessionId) this.#notify(rooms.session(call.caller.sessionId), 'call:accepted', { callId: call.callId, ...(sdp ? { sdp } : {}) });
    this.#notify(rooms.user(call.callee.userId), 'call:ended', { callId: call.callId, reason: 'answered_elsewhere' }, rooms.session(answeredOn));
  }

  async #keepEarly(call: CallRecord, p: CallSignal): Promise<void> {
    let r: 'ok' | 'full' | 'state';
    switch (p.type) {
      case 'offer':
        r = (await this.#store.setFields(call.callId, 'live', { offer: p.sdp })) ? 'ok' : 'state';
        break;
      case 'answer':
        throw new AppError('CALL_INVALID_STATE', 'Only the callee answers');
      case 'candidate':
        r = await this.#store.pushEarly(call.callId, { type: 'candidate', candidate: p.candidate }, EARLY_SIGNALS_MAX, this.#ringMs);
        break;
      case 'end-of-candidates':
        r = await this.#store.pushEarly(call.callId, { type: 'end-of-candidates' }, EARLY_SIGNALS_MAX, this.#ringMs);
        break;
    }
    if (r === 'full') throw new AppError('RATE_LIMITED', `At most ${EARLY_SIGNALS_MAX} signals before the answer`);
    if (r === 'state') {
      // Answered (or ended) meanwhile: deliver to the device that answered.
      const after = await this.#store.get(call.callId);
      if (!after || after.state === 'ended' || !after.callee.sessionId) throw stateError(after);
      this.#notify(rooms.session(after.callee.sessionId), 'call:signal', p);
    }
  }

  async #view(call: CallRecord, role: CallRole, sessionId: string): Promise<CallView> {
    const peerId = call[otherRole(role)].userId;
    // A callee always sees the caller's number (the call showed it); a caller sees the callee's only if they dialled it.
    const phone = role === 'callee' || call.calleeByPhone;
    return toView(call, role, sessionId, party(peerId, await this.#ctx.accounts.get(peerId), { phone }));
  }

  /**
   * The live call the user is in, if any, and whether an invite could still
   * be a crossing one (glare): only when the user is the ringing callee of
   * it, and then only towards its caller.
   */
  async #ownCall(userId: string): Promise<{ callId: string; glarePeer: string | undefined } | null> {
    const callId = await this.#store.currentCallId(userId);
    const call = callId ? await this.#store.get(callId) : null;
    if (!call || call.state === 'ended') return null;
    const ringingUs = roleOf(call, userId) === 'callee' && RINGING_STATES.includes(call.state);
    return { callId: call.callId, glarePeer: ringingUs ? call.caller.userId : undefined };
  }

  /**
   * The callee of an invite. A busy caller is refused before any account is
   * looked up, so `call:invite` cannot be used to test numbers for free
   * while staying busy (no ringing, no quota); the only exception is a
   * crossing invite to the caller of the call ringing us, whose number the
   * ring showed. A phone number is charged to the caller's discovery quota
   * (CalleeLookup) before it is looked up; a user id costs nothing.
   */
  async #resolveCallee(
    to: Req<'call:invite'>['to'], userId: string, caller: Profile | null, busy: { callId: string; glarePeer: string | undefined } | null,
  ): Promise<{ calleeId: string; byPhone: boolean }> {
    const refuseBusy = (): never => {
      this.#background(this.#auditStale(busy!.callId));
      throw busyError(busy!.callId);
    };
    if (busy && !busy.glarePeer) refuseBusy();
    if ('userId' in to) {
      if (to.userId === userId) throw new AppError('CALL_SELF');
      if (busy && to.userId !== busy.glarePeer) refuseBusy();
      return { calleeId: to.userId, byPhone: false };
    }
    // An E.164 number is looked up as written (every account number is one);
    // anything else is read like an address-book entry, in the caller's region.
    const compact = to.phone.replace(/[\s().-]/g, '');
    const region = caller ? PhoneNumbers.countryOf(caller.phone) : undefined;
    const e164 = E164.safeParse(compact).success ? compact : PhoneNumbers.normaliseContact(to.phone, region);
    if (!e164) throw new AppError('PHONE_INVALID');
    if (caller && e164 === caller.phone) throw new AppError('CALL_SELF');
    if (busy) {
      const peer = await this.#ctx.accounts.get(busy.glarePeer!);
      if (peer?.phone !== e164) refuseBusy();
      return { calleeId: busy.glarePeer!, byPhone: true };
    }
    const calleeId = await this.#lookup.byPhone(userId, e164);
    if (!calleeId) throw new AppError('CALLEE_NOT_FOUND');
    return { calleeId, byPhone: true };
  }

  #notify<K extends ServerNoticeName>(room: string, event: K, payload: NoticePayload<K>, except?: string): void {
    const op = except ? this.#ctx.io.to(room).except(except) : this.#ctx.io.to(room);
    (op.emit as (ev: string, p: unknown) => boolean).call(op, event, payload);
  }

  /** Runs after the current request's ack is written, so a client always has the call id before any notice about it. */
  #afterAck(fn: () => void | Promise<void>): void {
    this.#background(new Promise<void>((resolve) => setImmediate(resolve)).then(fn));
  }

  #background(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => this.#log.error({ err }, 'call background work failed'));
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }
}

/**
 * A party as the other side is shown it. The display name is a label the user
 * chose to show to whoever reaches them: it comes with every user id the hub
 * hands out (discovery matches, contact:joined, conference rosters) and with
 * every call they place. The number is the secret: it is left out unless
 * `phone` says the viewer may see it.
 */
function party(userId: string, profile: Profile | null, show: { phone: boolean } = { phone: true }): CallParty {
  return { userId, phone: show.phone ? (profile?.phone ?? null) : null, displayName: profile?.displayName ?? null };
}

function busyError(callId: string): AppError {
  return new AppError('CALL_INVALID_STATE', 'You are already in a call', { details: { callId } });
}

