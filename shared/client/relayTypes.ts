/**
 * The contract between the SDK and its relay media module (RelayMedia.ts,
 * mediasoup-client), so calls and conferences use the relay without
 * importing mediasoup-client themselves.
 */
import type { MediaProducer } from '../protocol/media.js';
import type { CallhubClient } from './CallhubClient.js';
import type { StatsReportLike } from './stats.js';

export interface RelayRoomHandlers {
  /** A remote track started (consumed and resumed). */
  onTrack?(track: MediaStreamTrack, producer: MediaProducer): void;
  /** A remote track ended. */
  onTrackEnded?(producer: MediaProducer): void;
  /** A remote participant (or the host) muted or unmuted a track. */
  onTrackPaused?(producer: MediaProducer, paused: boolean): void;
  /** Media to or from the relay connected (first transport to reach ICE+DTLS connected, after each (re)join). */
  onConnected?(): void;
  /** The room's dominant speaker changed. */
  onActiveSpeaker?(userId: string, peerId: string): void;
  /** Media was lost and the room is being joined again (transparent to the user). */
  onRejoining?(): void;
  onError?(err: unknown): void;
}

/** This device's media in one relay room. */
export interface RelayRoomHandle {
  readonly kind: 'relay';
  readonly roomId: string;
  /** Stats of the send and recv transports. */
  getStats(): Promise<StatsReportLike[]>;
  /** Pauses or resumes the microphone's producer on the relay (others are told). */
  setAudioPaused(paused: boolean): Promise<void>;
  /** Leaves the room's media; idempotent. */
  close(): void;
}

/** Joins relay rooms (CallhubClient's `relay` option; default: RelayMedia's). */
export interface RelayJoiner {
  join(client: CallhubClient, roomId: string, local: MediaStream, handlers: RelayRoomHandlers): Promise<RelayRoomHandle>;
}
