import type { CallParty } from '../protocol/calls.js';
import type {
  ConferenceEndReason,
  ConferenceInvitee,
  ConferenceParticipant,
  ConferenceView,
} from '../protocol/conference.js';
import type { CallhubClient } from './CallhubClient.js';
import type { CallTarget } from './CallManager.js';
import { ClientError } from './ClientError.js';
import { Emitter } from './Emitter.js';
import { openLocalMedia, type MediaEnvironment } from './MediaEnvironment.js';
import type { RelayJoiner, RelayRoomHandle } from './relayTypes.js';
import { inboundFrom, type InboundTrackStats } from './stats.js';

/** ringing: invited, not joined; joined: media flows (or is connecting); ended: over for this device. */
export type ConferencePhase = 'ringing' | 'joining' | 'joined' | 'ended';

/** Why this device is out: the conference ended, you left or declined, the host removed you, you joined elsewhere. */
export type ConferenceExit = ConferenceEndReason | 'left' | 'declined' | 'removed' | 'joined_elsewhere' | 'invite_ended' | 'failed';

export interface ConferenceEvents {
  phase: (phase: ConferencePhase) => void;
  /** The participant list, host or invitations changed (replace what you show). */
  participants: (participants: readonly ConferenceParticipant[], invited: readonly ConferenceInvitee[]) => void;
  /** A participant's media to play (one stream per participant, audio and video). */
  stream: (userId: string, stream: MediaStream) => void;
  /** A participant's media ended. */
  streamEnded: (userId: string) => void;
  activeSpeaker: (userId: string) => void;
  /** The host muted this device's audio, video or (kind null) every track. */
  mutedByHost: (kind: 'audio' | 'video' | null, by: string) => void;
  ended: (reason: ConferenceExit) => void;
  error: (error: unknown) => void;
}

export interface ConferenceContext {
  client: CallhubClient;
  env: () => MediaEnvironment;
  relay: () => Promise<RelayJoiner>;
  clientInfo: { platform: 'ios' | 'android' | 'web' | 'desktop'; appVersion: string };
  onEnded(conference: Conference): void;
}

/**
 * One conference as this device sees it: its participant list, host
 * controls, and this device's media in the conference's relay room (one
 * stream per remote participant, the active speaker). Created by
 * `ConferenceManager` (`create`, `join`, the `incoming` event).
 */
export class Conference extends Emitter<ConferenceEvents> {
  readonly id: string;
  readonly #ctx: ConferenceContext;
  #roomId: string;
  #video: boolean;
  #hostId: string;
  #participants: ConferenceParticipant[] = [];
  #invited: ConferenceInvitee[] = [];
  #phase: ConferencePhase;
  #exit: ConferenceExit | undefined;
  #activeSpeaker: string | undefined;
  #local: MediaStream | undefined;
  #room: RelayRoomHandle | undefined;
  #streams = new Map<string, MediaStream>();
  #muted = false;
  /** Set once by #finish: an attach still in flight checks it after every await and releases what it got. */
  #finished = false;
  /** Who invited this device (incoming invitations). */
  readonly inviter: CallParty | undefined;

  /** @internal */
  constructor(ctx: ConferenceContext, init: { conferenceId: string; roomId?: string; hostId: string; video: boolean; phase: ConferencePhase; inviter?: CallParty }) {
    super();
    this.#ctx = ctx;
    this.id = init.conferenceId;
    this.#roomId = init.roomId ?? init.conferenceId;
    this.#hostId = init.hostId;
    this.#video = init.video;
    this.#phase = init.phase;
    this.inviter = init.inviter;
    this.onListenerError = (err) => this.emit('error', err);
  }

  get phase(): ConferencePhase {
    return this.#phase;
  }

  get exitReason(): ConferenceExit | undefined {
    return this.#exit;
  }

  get video(): boolean {
    return this.#video;
  }

  get hostId(): string {
    return this.#hostId;
  }

  get isHost(): boolean {
    return this.#hostId === this.#ctx.client.userId;
  }

  /**
   * Participants with their track states as the hub lists them (it sends the
   * list again whenever a track starts, stops, or is muted or unmuted, by its
   * owner or the host); this device's own audio follows its mute state at once.
   */
  get participants(): readonly ConferenceParticipant[] {
    const me = this.#ctx.client.userId;
    return this.#participants.map((p) => {
      if (p.userId !== me || !this.#room) return p;
      const audio = this.#local?.getAudioTracks().length ? (this.#muted ? 'muted' : 'on') : 'off';
      return audio === p.audio ? p : { ...p, audio };
    });
  }

  get invited(): readonly ConferenceInvitee[] {
    return this.#invited;
  }

  get activeSpeaker(): string | undefined {
    return this.#activeSpeaker;
  }

  get muted(): boolean {
    return this.#muted;
  }

  get localStream(): MediaStream | undefined {
    return this.#local;
  }

  /** Remote media by participant user id. */
  get streams(): ReadonlyMap<string, MediaStream> {
    return this.#streams;
  }

  // --- what the app does -------------------------------------------------------

  /** Accepts an invitation (or joins a conference you may join by id) on this device. */
  async join(): Promise<void> {
    if (this.#phase !== 'ringing') throw new ClientError('CALL_INVALID_STATE', `cannot join a conference in phase ${this.#phase}`);
    this.#setPhase('joining');
    try {
      const res = await this.#ctx.client.request('conference:join', { conferenceId: this.id, client: this.#ctx.clientInfo });
      await this.attach(res.conference);
    } catch (err) {
      this.#finish('failed');
      throw err;
    }
  }

  /** Refuses an invitation (on every device of this user). */
  async decline(): Promise<void> {
    if (this.#phase !== 'ringing') return;
    await this.#ctx.client.request('conference:decline', { conferenceId: this.id });
    this.#finish('declined');
  }

  /** Leaves (a leaving host hands the role on; the last one out ends it). */
  async leave(): Promise<void> {
    if (this.#phase === 'ended') return;
    if (this.#phase === 'ringing') return this.decline();
    try {
      await this.#ctx.client.request('conference:leave', { conferenceId: this.id });
    } finally {
      this.#finish('left');
    }
  }

  /** Ends the conference for everyone (host only). */
  async end(): Promise<void> {
    await this.#ctx.client.request('conference:end', { conferenceId: this.id });
    this.#finish('ended_by_host');
  }

  /** Rings more people (any participant may). Resolves with the user ids now ringing. */
  async invite(targets: CallTarget[]): Promise<string[]> {
    const res = await this.#ctx.client.request('conference:invite', { conferenceId: this.id, invite: targets });
    return res.invited;
  }

  /** Host: mutes a participant's audio, video or every track. */
  async muteParticipant(userId: string, kind?: 'audio' | 'video'): Promise<void> {
    await this.#ctx.client.request('conference:mute', kind ? { conferenceId: this.id, userId, kind } : { conferenceId: this.id, userId });
  }

  /** Host: removes a participant or withdraws an invitation. */
  async remove(userId: string): Promise<void> {
    await this.#ctx.client.request('conference:remove', { conferenceId: this.id, userId });
  }

  /** Mutes or unmutes this device's microphone (the relay producer pauses; others see it). */
  async setMuted(muted: boolean): Promise<void> {
    this.#muted = muted;
    for (const t of this.#local?.getAudioTracks() ?? []) t.enabled = !muted;
    this.emit('participants', this.participants, this.#invited);
    await this.#room?.setAudioPaused(muted).catch((err: unknown) => this.emit('error', err));
  }

  /** Inbound RTP counters of every remote track. */
  async inboundStats(): Promise<InboundTrackStats[]> {
    if (!this.#room) return [];
    return (await this.#room.getStats()).flatMap((r) => inboundFrom(r));
  }

  // --- driven by ConferenceManager ---------------------------------------------------

  /** @internal Joined on the hub (create, join, moved, resumed): take the view and join the media. */
  async attach(view: ConferenceView): Promise<void> {
    if (this.#finished) return;
    this.#roomId = view.roomId;
    this.#video = view.video;
    this.applyView(view);
    this.#setPhase('joining');
    try {
      if (!this.#local) {
        const opened = await openLocalMedia(this.#ctx.env(), this.#video);
        // Over while the microphone was opening (ended, removed, left), or opened by a concurrent attach:
        // this stream is nobody's, so it must not stay live.
        if (this.#finished || this.#local) stopTracks(opened);
        if (this.#finished) return;
        this.#local ??= opened;
      }
      const local = this.#local;
      for (const t of local.getAudioTracks()) t.enabled = !this.#muted;
      const joiner = await this.#ctx.relay();
      if (this.#finished) return;
      const room = await joiner.join(this.#ctx.client, this.#roomId, local, {
        onTrack: (track, producer) => this.#addTrack(producer.userId, track),
        onTrackEnded: (producer) => this.#removeTrack(producer.userId, producer.kind),
        onActiveSpeaker: (userId) => {
          this.#activeSpeaker = userId;
          this.emit('activeSpeaker', userId);
        },
        onError: (err) => this.emit('error', err),
      });
      if (this.#finished) {
        room.close();
        return;
      }
      this.#room = room;
      if (this.#muted) await room.setAudioPaused(true);
      if (this.#finished) return; // #finish closed the room
      this.#setPhase('joined');
      this.emit('participants', this.participants, this.#invited);
    } catch (err) {
      if (this.#finished) return; // it ended meanwhile: the failure is moot, 'ended' told the app why
      this.emit('error', err);
      void this.#ctx.client.request('conference:leave', { conferenceId: this.id }).catch(() => undefined);
      this.#finish('failed');
      throw err;
    }
  }

  /** @internal */
  applyView(view: ConferenceView): void {
    this.applyParticipants(view.hostId, view.participants, view.invited);
  }

  /** @internal */
  applyParticipants(hostId: string, participants: ConferenceParticipant[], invited: ConferenceInvitee[]): void {
    this.#hostId = hostId;
    this.#participants = participants;
    this.#invited = invited;
    this.emit('participants', this.participants, invited);
  }

  /** @internal The host muted this device. */
  onMutedByHost(kind: 'audio' | 'video' | null, by: string): void {
    if (kind === null || kind === 'audio') {
      this.#muted = true;
      for (const t of this.#local?.getAudioTracks() ?? []) t.enabled = false;
      void this.#room?.setAudioPaused(true).catch(() => undefined);
    }
    if (kind === null || kind === 'video') for (const t of this.#local?.getVideoTracks() ?? []) t.enabled = false;
    this.emit('mutedByHost', kind, by);
    this.emit('participants', this.participants, this.#invited);
  }

  /** @internal This device is out (ended, removed, joined elsewhere, invitation over). */
  onExit(reason: ConferenceExit): void {
    this.#finish(reason);
  }

  // --- internals ---------------------------------------------------------------------

  #addTrack(userId: string, track: MediaStreamTrack): void {
    let stream = this.#streams.get(userId);
    if (!stream) {
      stream = this.#ctx.env().createStream([track]);
      this.#streams.set(userId, stream);
    } else {
      for (const old of stream.getTracks()) if (old.kind === track.kind && old !== track) stream.removeTrack(old);
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
    }
    this.emit('stream', userId, stream);
  }

  #removeTrack(userId: string, kind: 'audio' | 'video'): void {
    const stream = this.#streams.get(userId);
    if (!stream) return;
    for (const t of stream.getTracks()) if (t.kind === kind) stream.removeTrack(t);
    if (stream.getTracks().length === 0) {
      this.#streams.delete(userId);
      this.emit('streamEnded', userId);
    }
  }

  #setPhase(phase: ConferencePhase): void {
    if (this.#phase === phase || this.#phase === 'ended') return;
    this.#phase = phase;
    this.emit('phase', phase);
  }

  #finish(reason: ConferenceExit): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#exit = reason;
    this.#room?.close();
    this.#room = undefined;
    if (this.#local) stopTracks(this.#local);
    for (const userId of [...this.#streams.keys()]) this.emit('streamEnded', userId);
    this.#streams.clear();
    this.#phase = 'ended';
    this.emit('phase', 'ended');
    this.emit('ended', reason);
    this.#ctx.onEnded(this);
  }
}

function stopTracks(stream: MediaStream): void {
  for (const t of stream.getTracks()) t.stop();
}
