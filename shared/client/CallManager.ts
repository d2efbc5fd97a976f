import type { CallParty } from '../protocol/calls.js';
import type { CallhubClient } from './CallhubClient.js';
import { Call, type CallContext } from './Call.js';
import type { RelayJoiner } from './relayTypes.js';
import { ClientError } from './ClientError.js';
import { Emitter } from './Emitter.js';
import { requireMediaEnvironment, type MediaEnvironment } from './MediaEnvironment.js';

export interface CallManagerOptions {
  media: MediaEnvironment | undefined;
  relay: () => Promise<RelayJoiner>;
  appVersion: string;
  platform: 'ios' | 'android' | 'web' | 'desktop';
  /** Test-only: never let media flow peer-to-peer (drop all ICE candidates). */
  blockDirectMedia: boolean;
}

export interface CallManagerEvents {
  /** A call rings on this device: show it, then `accept()` or `decline()`. */
  incoming: (call: Call) => void;
  /** Any call (outgoing or incoming) ended. */
  ended: (call: Call) => void;
}

/** Who to call: a user id or a phone number (any format the hub can read). */
export type CallTarget = { userId: string } | { phone: string };

/**
 * The 1:1 calls of a client: places outgoing calls, turns `call:incoming`
 * into `Call` objects and routes every call notice to its call. After a
 * reconnect it asks the hub about each live call, so a call that ended while
 * the device was offline ends here too.
 */
export class CallManager extends Emitter<CallManagerEvents> {
  readonly #client: CallhubClient;
  readonly #opts: CallManagerOptions;
  readonly #calls = new Map<string, Call>();
  readonly #pending = new Set<Call>();
  readonly #offs: (() => void)[] = [];
  /**
   * Notices for a call id we do not know yet: the hub may send `call:ringing`
   * (or more) before the invite's acknowledgement reaches us.
   */
  readonly #orphans = new Map<string, { at: number; deliver: (call: Call) => void }[]>();

  constructor(client: CallhubClient, opts: CallManagerOptions) {
    super();
    this.#client = client;
    this.#opts = opts;
    const on = client.onNotice.bind(client);
    this.#offs.push(
      on('call:incoming', (p) => {
        const known = this.#calls.get(p.callId);
        if (known) {
          known.onIncoming(p);
          return;
        }
        const call = new Call(this.#context(), { role: 'callee', video: p.video, peer: p.caller, callId: p.callId, state: 'ringing', iceServers: p.iceServers });
        call.onIncoming(p);
        this.#calls.set(p.callId, call);
        this.emit('incoming', call);
      }),
      on('call:ringing', (p) => this.#route(p.callId, (c) => c.onRinging())),
      on('call:accepted', (p) => this.#route(p.callId, (c) => void c.onAccepted(p.sdp))),
      on('call:signal', (p) => this.#route(p.callId, (c) => void c.onSignal(p))),
      on('call:media-state', (p) => this.#route(p.callId, (c) => c.onPeerMedia({ audio: p.audio, video: p.video }))),
      on('call:peer-connection', (p) => this.#route(p.callId, (c) => c.onPeerConnection(p.state))),
      on('call:ended', (p) => this.#route(p.callId, (c) => c.onEnded(p.reason))),
      on('call:relay', (p) => this.#route(p.callId, (c) => void c.moveToRelay(p.roomId))),
      on('call:resumed', ({ call: view }) => {
        // A live call this client has no media for (e.g. the app restarted mid-call):
        // end it cleanly rather than leave the other party waiting for the grace period.
        if (view.thisDevice && !this.#calls.has(view.callId) && !this.#pending.size && view.state !== 'ended') {
          const ringing = view.state === 'inviting' || view.state === 'ringing';
          const req = ringing && view.role === 'caller' ? this.#client.request('call:cancel', { callId: view.callId })
            : ringing ? Promise.resolve({})
            : this.#client.request('call:hangup', { callId: view.callId });
          void req.catch(() => undefined);
        }
      }),
    );
    const offReconnect = client.onConnected(({ first }) => {
      if (!first) void this.resync();
    });
    this.#offs.push(offReconnect);
  }

  /** Live calls (ringing, answered or connected). */
  get active(): Call[] {
    return [...this.#calls.values(), ...this.#pending].filter((c) => c.state !== 'ended');
  }

  get(callId: string): Call | undefined {
    return this.#calls.get(callId);
  }

  /**
   * Calls a user. Resolves once the hub took the invite (the call rings or
   * failed at once, e.g. CALLEE_BUSY); follow `state`/`ended` for the rest.
   */
  async call(target: CallTarget, opts: { video?: boolean } = {}): Promise<Call> {
    requireMediaEnvironment(this.#opts.media);
    const placeholder: CallParty = { userId: 'userId' in target ? target.userId : 'unknown', phone: null, displayName: null };
    const call = new Call(this.#context(), { role: 'caller', video: opts.video === true, peer: placeholder, state: 'inviting' });
    this.#pending.add(call);
    try {
      await call.prepareOutgoing();
      // Hung up while the microphone was opening: nobody should ring.
      if (hasEnded(call)) {
        this.#pending.delete(call);
        return call;
      }
      const ack = await this.#client.request('call:invite', {
        to: target,
        video: opts.video === true,
        client: { platform: this.#opts.platform, appVersion: this.#opts.appVersion },
      });
      this.#pending.delete(call);
      if (hasEnded(call)) {
        // Hung up while the invite was in flight.
        await this.#client.request('call:cancel', { callId: ack.callId }).catch(() => undefined);
        return call;
      }
      this.#calls.set(ack.callId, call);
      await call.onInvited(ack);
      const orphans = this.#orphans.get(ack.callId) ?? [];
      this.#orphans.delete(ack.callId);
      for (const o of orphans) o.deliver(call);
      return call;
    } catch (err) {
      this.#pending.delete(call);
      call.onEnded(err instanceof ClientError && err.code === 'CALLEE_BUSY' ? 'busy' : 'failed');
      throw err;
    }
  }

  /** @internal After a reconnect: calls that ended meanwhile end here too. */
  async resync(): Promise<void> {
    for (const call of this.active) {
      const callId = call.id;
      if (!callId) continue;
      try {
        const { call: view } = await this.#client.request('call:state', { callId });
        if (view.state === 'ended') call.onEnded(view.endReason ?? 'party_lost');
      } catch (err) {
        if (err instanceof ClientError && (err.code === 'CALL_NOT_FOUND' || err.code === 'FORBIDDEN')) call.onEnded('party_lost');
      }
    }
  }

  /** Hangs up every call and stops listening. */
  close(): void {
    for (const call of this.active) void call.hangup();
    for (const off of this.#offs.splice(0)) off();
    this.removeAllListeners();
  }

  #route(callId: string, deliver: (call: Call) => void): void {
    const call = this.#calls.get(callId);
    if (call) {
      deliver(call);
      return;
    }
    if (!this.#pending.size) return;
    const now = Date.now();
    for (const [id, list] of this.#orphans) if (list.every((o) => now - o.at > 15_000)) this.#orphans.delete(id);
    const list = this.#orphans.get(callId) ?? [];
    if (list.length < 256) list.push({ at: now, deliver });
    this.#orphans.set(callId, list);
  }

  #context(): CallContext {
    return {
      client: this.#client,
      env: () => requireMediaEnvironment(this.#opts.media),
      relay: this.#opts.relay,
      appVersion: this.#opts.appVersion,
      platform: this.#opts.platform,
      blockDirect: this.#opts.blockDirectMedia,
      onEnded: (call) => {
        if (call.id) this.#calls.delete(call.id);
        this.#pending.delete(call);
        this.emit('ended', call);
      },
    };
  }
}

/** A call's state changes across awaits; a function call keeps TypeScript from narrowing it away. */
function hasEnded(call: Call): boolean {
  return call.state === 'ended';
}
