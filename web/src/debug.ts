import type { InboundTrackStats } from '../../shared/client/stats.js';
import type { Softphone } from './Softphone.js';

/**
 * A small read-only window into the softphone for tests and support:
 * `window.callhubDebug.stats()` gives the inbound RTP counters of the current
 * call, so a test can prove audio is received and decoded.
 */
export interface CallhubDebug {
  state(): string;
  userId(): string | undefined;
  call(): { id?: string; role: string; state: string; path?: string; muted: boolean; timings: Record<string, number | undefined> } | null;
  lastEnded(): { callId?: string; reason: string } | null;
  conference(): { id: string; phase: string; hostId: string; isHost: boolean; muted: boolean; activeSpeaker?: string; participants: { userId: string; audio: string; host: boolean }[] } | null;
  lastConferenceExit(): { conferenceId: string; reason: string } | null;
  /** Inbound RTP counters of the current call, or of the current conference. */
  stats(): Promise<InboundTrackStats[]>;
}

declare global {
  interface Window {
    callhubDebug?: CallhubDebug;
  }
}

export function installDebugHook(app: Softphone): void {
  window.callhubDebug = {
    state: () => app.client.state,
    userId: () => app.client.userId,
    call: () => {
      const call = app.currentCall;
      if (!call) return null;
      const out: ReturnType<CallhubDebug['call']> = { role: call.role, state: call.state, muted: call.muted, timings: { ...call.timings } };
      if (call.id) out.id = call.id;
      if (call.mediaPath) out.path = call.mediaPath;
      return out;
    },
    lastEnded: () => app.lastEnded ?? null,
    conference: () => {
      const conf = app.currentConference;
      if (!conf) return null;
      const out: ReturnType<CallhubDebug['conference']> = {
        id: conf.id, phase: conf.phase, hostId: conf.hostId, isHost: conf.isHost, muted: conf.muted,
        participants: conf.participants.map((p) => ({ userId: p.userId, audio: p.audio, host: p.host })),
      };
      if (conf.activeSpeaker) out.activeSpeaker = conf.activeSpeaker;
      return out;
    },
    lastConferenceExit: () => app.lastConferenceExit ?? null,
    stats: async () => (app.currentCall ? app.currentCall.inboundStats() : app.currentConference ? app.currentConference.inboundStats() : []),
  };
}
