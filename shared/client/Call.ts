import type { CallEndReason, CallParty, CallRole, CallSignal, CallState, IceCandidate, IceServer } from '../protocol/calls.js';
import type { CallhubClient } from './CallhubClient.js';
import { ClientError } from './ClientError.js';
import { DirectMedia } from './DirectMedia.js';
import type { RelayJoiner } from './relayTypes.js';
import { Emitter } from './Emitter.js';
import { openLocalMedia, type MediaEnvironment } from './MediaEnvironment.js';
import { connectivityFrom, inboundFrom, qualityFrom, type Connectivity, type InboundTrackStats, type StatsReportLike } from './stats.js';

/** Which way the call's media travels. */
export type MediaPathKind = 'direct' | 'relay';

/** The media of a call on one path; the call owns it and closes it. */
export interface CallMediaPath {
  readonly kind: MediaPathKind;
  /** Stats reports of every peer connection the path uses. */
  getStats(): Promise<StatsReportLike[]>;
  /** Stop sending audio upstream (the relay path pauses its producer); optional. */
  setAudioPaused?(paused: boolean): Promise<void>;
  close(): void;
}


export interface CallTimings {
  /** Epoch ms of the invite (caller) or the first ring (callee). */
  startedAt: number;
  /** Epoch ms when the call was answered (callee: accept sent; caller: call:accepted). */
  answeredAt?: number;
  /** Epoch ms when media connected (first time, and again after a move to the relay). */
  connectedAt?: number;
  /** Epoch ms when the hub moved the call to the relay (`call:relay`), if it did. */
  relayAt?: number;
  /** Epoch ms when the first remote audio was decoded (on the relay path, the first after the move). */
  firstAudioAt?: number;
  endedAt?: number;
}

export interface CallEvents {
  state: (state: CallState) => void;
  /** Remote media to play: attach to an <audio>/<video> element. */
  remoteStream: (stream: MediaStream) => void;
  /** Media connected on a path (again after a move to the relay). */
  connected: (info: { path: MediaPathKind; connectivity?: Connectivity }) => void;
  /** The other party muted/unmuted or turned video on/off. */
  peerMedia: (state: { audio: boolean; video: boolean }) => void;
  /** The other party's signaling connection dropped or came back. */
  peerConnection: (state: 'lost' | 'resumed') => void;
  ended: (reason: CallEndReason) => void;
  error: (error: unknown) => void;
}

export interface CallContext {
  client: CallhubClient;
  env: () => MediaEnvironment;
  relay: () => Promise<RelayJoiner>;
  appVersion: string;
  platform: 'ios' | 'android' | 'web' | 'desktop';
  blockDirect: boolean;
  onEnded(call: Call): void;
}

/**
 * One 1:1 call as this device sees it. Created by `CallManager` (`call()` for
 * outgoing, the `incoming` event for incoming). It owns its local media, its
 * media path (peer-to-peer first, the relay when the hub moves it) and its
 * timers; `ended` fires once and everything is released.
 */
export class Call extends Emitter<CallEvents> {
  readonly video: boolean;
  readonly timings: CallTimings;
  /** Who is on the other end (verified number and display name as the hub knows them). */
  peer: CallParty;
  #id: string | undefined;
  #role: CallRole;
  #state: CallState;
  #endReason: CallEndReason | undefined;
  #ctx: CallContext;
  #iceServers: IceServer[] = [];
  #local: MediaStream | undefined;
  #remote: MediaStream | undefined;
  #media: CallMediaPath | undefined;
  #direct: DirectMedia | undefined;
  #connectivity: Connectivity | undefined;
  #muted = false;
  #peerMedia: { audio: boolean; video: boolean } | null = null;
  /** Offer that arrived while ringing (callee), or answer before the path existed (caller). */
  #remoteSdp: string | undefined;
  #earlySignals: CallSignal[] = [];
  #firstAudioTimer: ReturnType<typeof setInterval> | undefined;
  #qualityTimer: ReturnType<typeof setTimeout> | undefined;
  #connectedReported = false;
  #moving: Promise<void> | undefined;

  /** @internal */
  constructor(ctx: CallContext, init: { role: CallRole; video: boolean; peer: CallParty; callId?: string; state: CallState; iceServers?: IceServer[] }) {
    super();
    this.#ctx = ctx;
    this.#role = init.role;
    this.video = init.video;
    this.peer = init.peer;
    this.#id = init.callId;
    this.#state = init.state;
    this.#iceServers = init.iceServers ?? [];
    this.timings = { startedAt: Date.now() };
    this.onListenerError = (err) => this.emit('error', err);
  }

  /** caller or callee; a caller whose invite crossed the peer's (glare) becomes the callee of the peer's call. */
  get role(): CallRole {
    return this.#role;
  }

  /** The hub's call id (set once the invite was acknowledged). */
  get id(): string | undefined {
    return this.#id;
  }

  get state(): CallState {
    return this.#state;
  }

  get endReason(): CallEndReason | undefined {
    return this.#endReason;
  }

  /** `direct` or `relay` once media flows; undefined before. */
  get mediaPath(): MediaPathKind | undefined {
    return this.#media?.kind;
  }

  get connectivity(): Connectivity | undefined {
    return this.#connectivity;
  }

  get muted(): boolean {
    return this.#muted;
  }

  get peerMedia(): { audio: boolean; video: boolean } | null {
    return this.#peerMedia;
  }

  get localStream(): MediaStream | undefined {
    return this.#local;
  }

  get remoteStream(): MediaStream | undefined {
    return this.#remote;
  }

  // --- what the app does -------------------------------------------------------

  /** Answers a ringing incoming call on this device. */
  async accept(): Promise<void> {
    if (this.role !== 'callee' || this.#state !== 'ringing') throw new ClientError('CALL_INVALID_STATE', `cannot accept a call in state ${this.#state}`);
    const callId = this.#requireId();
    this.#setState('answered');
    this.timings.answeredAt = Date.now();
    // The caller may cancel (or another device answer) at any await below: an
    // ended call builds nothing more, and accept() resolves; `ended` says why.
    try {
      await this.#openLocal();
      const direct = this.#startDirect();
      if (!direct) return;
      let answer: string | undefined;
      if (this.#remoteSdp) answer = await direct.answer(this.#remoteSdp);
      if (this.#isEnded()) return;
      const res = await this.#ctx.client.request('call:accept', answer ? { callId, sdp: answer, client: this.#clientInfo() } : { callId, client: this.#clientInfo() });
      if (this.#isEnded()) return;
      if (res.iceServers.length && !this.#iceServers.length) this.#iceServers = res.iceServers;
      await this.#replayEarlySignals();
      this.#watchFirstAudio();
    } catch (err) {
      const endedMeanwhile = this.#isEnded();
      this.#fail(err); // once ended: releases what was built after the end, and reports no error
      if (!endedMeanwhile) throw err;
    }
  }

  /** Declines a ringing incoming call (for every device of this user), or reports this device busy. */
  async decline(reason: 'declined' | 'busy' = 'declined'): Promise<void> {
    if (this.role !== 'callee' || this.#state !== 'ringing') throw new ClientError('CALL_INVALID_STATE', `cannot decline a call in state ${this.#state}`);
    await this.#ctx.client.request('call:reject', { callId: this.#requireId(), reason });
    this.#end(reason === 'busy' ? 'busy' : 'declined');
  }

  /** Ends the call: cancels an unanswered outgoing call, declines a ringing one, hangs up an answered one. */
  async hangup(): Promise<void> {
    if (this.#state === 'ended') return;
    const callId = this.#id;
    if (!callId) {
      this.#end('cancelled'); // the invite is still in flight; CallManager cancels when its ack arrives
      return;
    }
    try {
      if (this.role === 'callee' && this.#state === 'ringing') {
        await this.decline();
        return;
      }
      if (this.role === 'caller' && (this.#state === 'inviting' || this.#state === 'ringing')) {
        await this.#ctx.client.request('call:cancel', { callId });
        this.#end('cancelled');
        return;
      }
      await this.reportQuality();
      await this.#ctx.client.request('call:hangup', { callId });
      this.#end('completed');
    } catch (err) {
      // The call may have ended on the hub meanwhile; locally it is over either way.
      if (!isGoneError(err)) this.emit('error', err);
      this.#end('completed');
    }
  }

  /** Mutes or unmutes the microphone and tells the other party. */
  async setMuted(muted: boolean): Promise<void> {
    this.#muted = muted;
    for (const t of this.#local?.getAudioTracks() ?? []) t.enabled = !muted;
    await this.#media?.setAudioPaused?.(muted);
    const callId = this.#id;
    if (callId && this.#state !== 'ended') {
      await this.#ctx.client.request('call:media-state', { callId, audio: !muted, video: this.video }).catch((err: unknown) => this.emit('error', err));
    }
  }

  /** Inbound RTP counters of the current media path (what a debug screen or a test checks). */
  async inboundStats(): Promise<InboundTrackStats[]> {
    if (!this.#media) return [];
    const reports = await this.#media.getStats();
    return reports.flatMap((r) => inboundFrom(r));
  }

  /** Sends the quality figures of the current media path to the hub (part of the call record). */
  async reportQuality(): Promise<void> {
    if (!this.#media) return;
    await this.#sendQuality(await this.#media.getStats().catch(() => []));
  }

  async #sendQuality(reports: StatsReportLike[]): Promise<void> {
    const callId = this.#id;
    if (!callId || !reports.length) return;
    // On the relay path the receiving transport carries what the user heard.
    const q = qualityFrom(reports[reports.length - 1]!);
    const rtt = reports.map((r) => qualityFrom(r).rttMs).find((v) => v !== undefined);
    const report: { callId: string; event: 'quality'; codec?: string; rttMs?: number; jitterMs?: number; loss?: number } = { callId, event: 'quality' };
    const codec = q.codec?.replace(/^(audio|video)\//, '');
    if (codec && /^[A-Za-z0-9/._-]{1,32}$/.test(codec)) report.codec = codec;
    if (rtt !== undefined) report.rttMs = Math.min(60_000, rtt);
    if (q.jitterMs !== undefined) report.jitterMs = Math.min(60_000, q.jitterMs);
    if (q.lossRatio !== undefined) report.loss = Math.min(1, q.lossRatio);
    await this.#ctx.client.request('call:report', report).catch((err: unknown) => {
      if (!isGoneError(err)) this.emit('error', err);
    });
  }

  // --- driven by CallManager --------------------------------------------------------

  /** @internal The invite was acknowledged: we have a call id (and maybe joined the peer's call on glare). */
  async onInvited(ack: { callId: string; role: CallRole; state: CallState; glare: boolean; peer: CallParty; sdp?: string; candidates?: IceCandidate[]; iceServers: IceServer[]; endReason?: CallEndReason }): Promise<void> {
    this.#id = ack.callId;
    this.peer = ack.peer;
    this.#iceServers = ack.iceServers;
    if (ack.state === 'ended') {
      this.#end(ack.endReason ?? 'failed');
      return;
    }
    if (ack.glare) {
      // Both called each other: we are now the callee of the peer's call and answer it.
      this.#role = ack.role;
      this.timings.answeredAt = Date.now();
      this.#setState('answered');
      for (const candidate of ack.candidates ?? []) this.#earlySignals.push({ callId: ack.callId, type: 'candidate', candidate });
      const direct = this.#startDirect();
      if (!direct) return;
      if (ack.sdp) {
        const answer = await direct.answer(ack.sdp);
        if (this.#isEnded()) return;
        await this.#signal({ callId: ack.callId, type: 'answer', sdp: answer });
      }
      if (this.#isEnded()) return;
      await this.#replayEarlySignals();
      this.#watchFirstAudio();
      return;
    }
    if (ack.state === 'ringing' && this.#state === 'inviting') this.#setState('ringing');
    const direct = this.#startDirect();
    if (!direct) return;
    const offer = await direct.createOffer();
    await this.#signal({ callId: ack.callId, type: 'offer', sdp: offer });
    await this.#replayEarlySignals();
  }

  /** @internal */
  async prepareOutgoing(): Promise<void> {
    await this.#openLocal();
  }

  /** @internal Incoming call data (first ring, or a repeat after a reconnect). */
  onIncoming(payload: { sdp?: string; candidates: IceCandidate[]; candidatesComplete: boolean; iceServers: IceServer[] }): void {
    if (payload.iceServers.length) this.#iceServers = payload.iceServers;
    if (payload.sdp) this.#remoteSdp = payload.sdp;
    const callId = this.#requireId();
    for (const candidate of payload.candidates) this.#earlySignals.push({ callId, type: 'candidate', candidate });
    if (payload.candidatesComplete) this.#earlySignals.push({ callId, type: 'end-of-candidates' });
  }

  /** @internal */
  onRinging(): void {
    if (this.#state === 'inviting') this.#setState('ringing');
  }

  /** @internal The callee answered. */
  async onAccepted(sdp: string | undefined): Promise<void> {
    if (this.#state === 'ended') return;
    this.timings.answeredAt ??= Date.now();
    this.#setState('answered');
    if (sdp) await this.#direct?.acceptAnswer(sdp).catch((err: unknown) => this.#fail(err));
    this.#watchFirstAudio();
  }

  /** @internal */
  async onSignal(signal: CallSignal): Promise<void> {
    if (this.#state === 'ended') return;
    const direct = this.#direct;
    if (!direct) {
      if (signal.type === 'offer') this.#remoteSdp = signal.sdp;
      else this.#earlySignals.push(signal);
      return;
    }
    try {
      switch (signal.type) {
        case 'offer': {
          if (this.role === 'callee' && this.#state === 'ringing') {
            this.#remoteSdp = signal.sdp;
            return;
          }
          const answer = await direct.answer(signal.sdp);
          await this.#signal({ callId: signal.callId, type: 'answer', sdp: answer });
          return;
        }
        case 'answer':
          await direct.acceptAnswer(signal.sdp);
          return;
        case 'candidate':
          await direct.addRemoteCandidate(signal.candidate);
          return;
        case 'end-of-candidates':
          await direct.addRemoteCandidate(null);
          return;
      }
    } catch (err) {
      this.emit('error', err);
    }
  }

  /** @internal */
  onPeerMedia(state: { audio: boolean; video: boolean }): void {
    this.#peerMedia = state;
    this.emit('peerMedia', state);
  }

  /** @internal */
  onPeerConnection(state: 'lost' | 'resumed'): void {
    this.emit('peerConnection', state);
  }

  /** @internal The hub moved the call to the relay: leave the peer connection, join the relay room. */
  moveToRelay(roomId: string): Promise<void> {
    this.#moving ??= (async () => {
      if (this.#state === 'ended') return;
      this.timings.relayAt = Date.now();
      this.timings.firstAudioAt = undefined; // measure the relay path's own first audio
      this.#stopFirstAudioWatch();
      try {
        const joiner = await this.#ctx.relay();
        if (this.#isEnded()) return; // ended while the relay module loaded: join nothing
        const local = await this.#openLocal();
        if (this.#isEnded()) return;
        this.#direct?.close();
        this.#direct = undefined;
        this.#media?.close();
        this.#media = undefined;
        this.#remote = undefined;
        this.#connectedReported = false;
        // The relay's transports may connect while join() is still producing.
        let connected = false;
        let attached = false;
        const path = await joiner.join(this.#ctx.client, roomId, local, {
          onTrack: (track) => this.#addRemoteTrack(track),
          onConnected: () => {
            connected = true;
            if (attached) void this.#onRelayConnected();
          },
          onError: (err) => this.emit('error', err),
        });
        if ((this.#state as CallState) === 'ended') { // it may have ended while joining
          path.close();
          return;
        }
        this.#media = path;
        this.#connectivity = undefined;
        attached = true;
        if (this.#muted) await path.setAudioPaused?.(true);
        if (connected) await this.#onRelayConnected();
      } catch (err) {
        if (!this.#isEnded()) this.emit('error', err);
      } finally {
        this.#moving = undefined;
      }
    })();
    return this.#moving;
  }

  // Media flows through the relay: the same report as for a direct connection, with the pair to the relay.
  async #onRelayConnected(): Promise<void> {
    const callId = this.#id;
    const media = this.#media;
    if (!callId || this.#state === 'ended' || media?.kind !== 'relay') return;
    this.timings.connectedAt = Date.now();
    const reports = await media.getStats().catch(() => []);
    this.#connectivity = reports.map((r) => connectivityFrom(r)).find((c) => c !== undefined);
    if (this.#state === 'answered') this.#setState('connected');
    this.emit('connected', this.#connectivity ? { path: 'relay', connectivity: this.#connectivity } : { path: 'relay' });
    this.#watchFirstAudio();
    const c = this.#connectivity;
    const path = c ? { local: c.local, remote: c.remote } : { local: 'host' as const, remote: 'host' as const };
    await this.#ctx.client.request('call:report', { callId, event: 'connected', path }).catch((err: unknown) => {
      if (!isGoneError(err)) this.emit('error', err);
    });
    this.#scheduleQualityReports();
  }

  /**
   * @internal The hub says the call is over. The hub still takes this
   * party's final quality report for a few seconds (CALL_FINAL_REPORT_S), so
   * the stats are read before the media path closes.
   */
  onEnded(reason: CallEndReason): void {
    if (this.#state === 'ended') return;
    const media = this.#media;
    const answered = this.timings.answeredAt !== undefined;
    this.#end(reason, answered && media ? media : undefined);
  }

  // --- internals ---------------------------------------------------------------

  async #openLocal(): Promise<MediaStream> {
    this.#local ??= await openLocalMedia(this.#ctx.env(), this.video);
    for (const t of this.#local.getAudioTracks()) t.enabled = !this.#muted;
    if (this.#state === 'ended') this.#stopLocal();
    return this.#local;
  }

  /** The peer connection; undefined once the call ended (nothing would ever close a new one). */
  #startDirect(): DirectMedia | undefined {
    if (this.#state === 'ended') return undefined;
    if (this.#direct) return this.#direct;
    const local = this.#local;
    if (!local) throw new ClientError('MEDIA', 'local media is not open');
    const direct = new DirectMedia(this.#ctx.env(), local, { iceServers: this.#iceServers, blockDirect: this.#ctx.blockDirect }, {
      onCandidate: (candidate) => {
        const callId = this.#id;
        if (!callId) return;
        void this.#signal(candidate ? { callId, type: 'candidate', candidate } : { callId, type: 'end-of-candidates' });
      },
      onRemoteTrack: (track) => this.#addRemoteTrack(track),
      onConnectionState: (state) => void this.#onDirectState(state),
    });
    this.#direct = direct;
    this.#media = { kind: 'direct', getStats: async () => [await direct.getStats()], close: () => direct.close() };
    return direct;
  }

  async #onDirectState(state: 'connected' | 'disconnected' | 'failed'): Promise<void> {
    const callId = this.#id;
    if (!callId || this.#state === 'ended' || this.#media?.kind !== 'direct') return;
    if (state === 'failed') {
      await this.#ctx.client.request('call:report', { callId, event: 'ice-failed' }).catch((err: unknown) => this.emit('error', err));
      return;
    }
    if (state !== 'connected' || this.#connectedReported) return;
    this.#connectedReported = true;
    this.timings.connectedAt = Date.now();
    const reports = await this.#media.getStats().catch(() => []);
    this.#connectivity = reports[0] ? connectivityFrom(reports[0]) : undefined;
    if (this.#state === 'answered') this.#setState('connected');
    this.emit('connected', this.#connectivity ? { path: 'direct', connectivity: this.#connectivity } : { path: 'direct' });
    const c = this.#connectivity;
    const path = c ? { local: c.local, remote: c.remote } : { local: 'host' as const, remote: 'host' as const };
    await this.#ctx.client.request('call:report', { callId, event: 'connected', path }).catch((err: unknown) => this.emit('error', err));
    this.#scheduleQualityReports();
  }

  // The hub keeps the latest figures of each party and closes the record when
  // the call ends, so both parties report during the call, not only the one
  // who hangs up: soon after media connects, then every 10 s.
  #scheduleQualityReports(firstInMs = 2000): void {
    clearTimeout(this.#qualityTimer);
    this.#qualityTimer = setTimeout(() => {
      if (this.#state === 'ended') return;
      void this.reportQuality().finally(() => {
        if (this.#state !== 'ended') this.#scheduleQualityReports(10_000);
      });
    }, firstInMs);
  }

  #addRemoteTrack(track: MediaStreamTrack): void {
    if (!this.#remote) {
      this.#remote = this.#ctx.env().createStream([track]);
    } else if (!this.#remote.getTracks().includes(track)) {
      this.#remote.addTrack(track);
    }
    this.emit('remoteStream', this.#remote);
  }

  async #replayEarlySignals(): Promise<void> {
    const queued = this.#earlySignals;
    this.#earlySignals = [];
    for (const s of queued) await this.onSignal(s);
  }

  async #signal(signal: CallSignal): Promise<void> {
    if (this.#state === 'ended') return;
    await this.#ctx.client.request('call:signal', signal).catch((err: unknown) => {
      if (this.#state !== 'ended') this.emit('error', err);
    });
  }

  // Polls the inbound counters until the first remote audio is decoded: the
  // "answer to first audio" figure the benchmarks quote.
  #watchFirstAudio(): void {
    if (this.timings.firstAudioAt || this.#firstAudioTimer) return;
    const startedAt = Date.now();
    this.#firstAudioTimer = setInterval(() => {
      if (this.#state === 'ended' || Date.now() - startedAt > 60_000) {
        this.#stopFirstAudioWatch();
        return;
      }
      void this.inboundStats().then((stats) => {
        if (this.timings.firstAudioAt) return;
        if (stats.some((s) => s.kind === 'audio' && s.packetsReceived > 0 && (s.totalSamplesReceived ?? 1) > 0)) {
          this.timings.firstAudioAt = Date.now();
          this.#stopFirstAudioWatch();
        }
      }, () => undefined);
    }, 25);
  }

  #stopFirstAudioWatch(): void {
    clearInterval(this.#firstAudioTimer);
    this.#firstAudioTimer = undefined;
  }

  #clientInfo(): { platform: 'ios' | 'android' | 'web' | 'desktop'; appVersion: string } {
    return { platform: this.#ctx.platform, appVersion: this.#ctx.appVersion };
  }

  #requireId(): string {
    if (!this.#id) throw new ClientError('CALL_INVALID_STATE', 'the call has no id yet');
    return this.#id;
  }

  #setState(state: CallState): void {
    if (this.#state === state || this.#state === 'ended') return;
    this.#state = state;
    this.emit('state', state);
  }

  #fail(err: unknown): void {
    if (this.#state === 'ended') {
      // A step still in flight when the call ended (a cancel racing accept): not the app's error,
      // but whatever it built after #end ran must be released here.
      this.#releaseMedia();
      return;
    }
    this.emit('error', err);
    const callId = this.#id;
    if (callId && !this.#isEnded()) void this.#ctx.client.request('call:hangup', { callId }).catch(() => undefined);
    this.#end('failed');
  }

  /** The state re-read after an await (TypeScript would keep a narrowing from before it). */
  #isEnded(): boolean {
    return this.#state === 'ended';
  }

  #releaseMedia(): void {
    this.#media?.close();
    this.#direct?.close();
    this.#stopLocal();
  }

  #stopLocal(): void {
    for (const t of this.#local?.getTracks() ?? []) t.stop();
  }

  /** Ends locally, once. `reportFrom`: a media path to read final quality figures from before it closes. */
  #end(reason: CallEndReason, reportFrom?: CallMediaPath): void {
    if (this.#state === 'ended') return;
    this.#endReason = reason;
    this.timings.endedAt = Date.now();
    this.#stopFirstAudioWatch();
    clearTimeout(this.#qualityTimer);
    const media = this.#media;
    const direct = this.#direct;
    if (reportFrom) {
      void reportFrom.getStats().catch(() => []).then((reports) => {
        media?.close();
        direct?.close();
        return this.#sendQuality(reports);
      });
    } else {
      media?.close();
      direct?.close();
    }
    this.#stopLocal();
    this.#state = 'ended';
    this.emit('state', 'ended');
    this.emit('ended', reason);
    this.#ctx.onEnded(this);
  }
}

/** The call ended on the hub before this request reached it: nothing to report to the app. */
function isGoneError(err: unknown): boolean {
  return err instanceof ClientError && (err.code === 'CALL_NOT_FOUND' || err.code === 'CALL_INVALID_STATE');
}
