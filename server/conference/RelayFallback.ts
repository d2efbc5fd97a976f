import type { CallEndedFact } from '../calls/CallEndedFact.js';
import type { CallRelayFallback, RelayFallbackCall } from '../calls/CallRelayFallback.js';
import type { HubContext } from '../HubContext.js';
import type { Logger } from '../../shared/runtime/log.js';
import type { RelayServices } from '../relay/registerRelay.js';
import { rooms } from '../socket/SocketGateway.js';

/**
 * Moves a 1:1 call whose direct media failed onto a relay room (Jitsi's
 * P2P -> bridge move). The room id is the call id; the two bound devices
 * become its only members, and each is told `call:relay { callId, roomId }`
 * to join it with the media events. The calls subsystem decides when (ICE
 * failure, connect timeout), calls this once per call, and records the
 * relay node. Once the call's fact is out (the call is over for good) the
 * room is closed.
 */
export class RelayFallback implements CallRelayFallback {
  readonly #ctx: HubContext;
  readonly #relay: RelayServices;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(ctx: HubContext, relay: RelayServices) {
    this.#ctx = ctx;
    this.#relay = relay;
    this.#log = ctx.log.child({ sub: 'relay-fallback' });
  }

  async moveToRelay(call: RelayFallbackCall): Promise<{ relayNode: string }> {
    if (this.#closed) throw new Error('the hub is shutting down');
    const roomId = call.callId;
    // RELAY_UNAVAILABLE rejects: the call then ends failed.
    const { nodeId } = await this.#relay.service.openRoom(roomId);
    await Promise.all([
      this.#relay.membership.add(roomId, call.caller.userId, call.caller.deviceId),
      this.#relay.membership.add(roomId, call.callee.userId, call.callee.deviceId),
    ]);
    const io = this.#ctx.io;
    io.to(rooms.session(call.caller.sessionId)).emit('call:relay', { callId: call.callId, roomId });
    io.to(rooms.session(call.callee.sessionId)).emit('call:relay', { callId: call.callId, roomId });
    this.#log.info({ callId: call.callId, relayNode: nodeId }, 'call moved to a relay room');
    return { relayNode: nodeId };
  }

  /** A call's fact: the call is over, so its relay room (if it ever had one) closes. */
  onCallEnded(fact: CallEndedFact): void {
    if (this.#closed || (fact.kind !== 'p2p' && fact.kind !== 'relayed')) return;
    const work = (async () => {
      // A p2p fact may still belong to a call whose move failed halfway: close what exists.
      if (fact.kind === 'p2p' && (await this.#relay.service.nodeOf(fact.callId)) === null) return;
      await this.#relay.media.closeRoom(fact.callId);
    })().catch((err: unknown) => {
      this.#log.warn({ callId: fact.callId, err: err instanceof Error ? err.message : String(err) }, 'could not close a relayed call\'s room; the relay closes idle rooms itself');
    });
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /** Waits for room closes in flight. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
  }
}
