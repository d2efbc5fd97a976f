import type { IceCandidate, IceServer } from '../protocol/calls.js';
import type { MediaEnvironment } from './MediaEnvironment.js';
import type { StatsReportLike } from './stats.js';

export interface DirectMediaHandlers {
  /** A local candidate to trickle to the peer (null: gathering finished). */
  onCandidate(candidate: IceCandidate | null): void;
  /** The remote tracks changed (a stream to attach to players). */
  onRemoteTrack(track: MediaStreamTrack): void;
  /** ICE/DTLS reached connected, or failed for good. */
  onConnectionState(state: 'connected' | 'disconnected' | 'failed'): void;
}

export interface DirectMediaOptions {
  iceServers: IceServer[];
  /**
   * Test-only: make direct media impossible by never sending local candidates
   * and ignoring the peer's (the call then has to move to the relay).
   */
  blockDirect?: boolean;
}

/**
 * The peer-to-peer media path of a 1:1 call: one RTCPeerConnection with the
 * local tracks, trickle ICE in both directions (remote candidates that arrive
 * before the remote description are queued), and getStats().
 */
export class DirectMedia {
  readonly pc: RTCPeerConnection;
  readonly #blockDirect: boolean;
  #pendingCandidates: IceCandidate[] = [];
  #remoteEnded = false;
  #closed = false;

  constructor(env: MediaEnvironment, local: MediaStream, opts: DirectMediaOptions, handlers: DirectMediaHandlers) {
    this.#blockDirect = opts.blockDirect === true;
    this.pc = new env.RTCPeerConnection({
      iceServers: opts.iceServers.map((s) => ({ ...s })),
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    for (const track of local.getTracks()) this.pc.addTrack(track, local);
    this.pc.onicecandidate = (e) => {
      if (this.#closed || this.#blockDirect) return;
      if (!e.candidate) {
        handlers.onCandidate(null);
        return;
      }
      if (!e.candidate.candidate) return; // Chrome's empty end-of-generation marker
      handlers.onCandidate({
        candidate: e.candidate.candidate,
        sdpMid: e.candidate.sdpMid,
        sdpMLineIndex: e.candidate.sdpMLineIndex,
        usernameFragment: e.candidate.usernameFragment,
      });
    };
    this.pc.ontrack = (e) => {
      if (!this.#closed) handlers.onRemoteTrack(e.track);
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      if (this.#closed) return;
      if (state === 'connected' || state === 'disconnected' || state === 'failed') handlers.onConnectionState(state);
    };
  }

  async createOffer(): Promise<string> {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    return this.#outgoing(offer.sdp ?? '');
  }

  /** Applies the peer's offer and returns our answer. */
  async answer(offerSdp: string): Promise<string> {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: this.#incoming(offerSdp) });
    await this.#flushCandidates();
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    return this.#outgoing(answer.sdp ?? '');
  }

  async acceptAnswer(answerSdp: string): Promise<void> {
    if (this.pc.signalingState !== 'have-local-offer') return; // a repeated answer (e.g. notice and ack both carry it)
    await this.pc.setRemoteDescription({ type: 'answer', sdp: this.#incoming(answerSdp) });
    await this.#flushCandidates();
  }

  async addRemoteCandidate(candidate: IceCandidate | null): Promise<void> {
    if (this.#closed || this.#blockDirect) return;
    if (candidate === null) {
      this.#remoteEnded = true;
      if (this.pc.remoteDescription) await this.pc.addIceCandidate().catch(() => undefined);
      return;
    }
    if (!this.pc.remoteDescription) {
      this.#pendingCandidates.push(candidate);
      return;
    }
    await this.pc.addIceCandidate(candidate).catch(() => undefined); // a stale candidate is not worth failing the call
  }

  getStats(): Promise<StatsReportLike> {
    return this.pc.getStats();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }

  async #flushCandidates(): Promise<void> {
    const queued = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const c of queued) await this.pc.addIceCandidate(c).catch(() => undefined);
    if (this.#remoteEnded) await this.pc.addIceCandidate().catch(() => undefined);
  }

  // With direct media blocked, no candidate may travel inside an SDP either.
  #outgoing(sdp: string): string {
    return this.#blockDirect ? stripCandidates(sdp) : sdp;
  }

  #incoming(sdp: string): string {
    return this.#blockDirect ? stripCandidates(sdp) : sdp;
  }
}

function stripCandidates(sdp: string): string {
  return sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates').join('\r\n');
}
