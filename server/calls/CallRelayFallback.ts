/**
 * The hook through which a 1:1 call whose direct media failed moves onto a
 * relay node (Jitsi's P2P -> bridge move). The calls subsystem decides when
 * (an ICE-failed report, or no `connected` report within
 * CALL_CONNECT_TIMEOUT_S of the answer) and calls it at most once per call;
 * the relay subsystem implements it with `ctx.calls.setRelayFallback(...)`.
 * Without a hook, such a call ends `failed`.
 */
export interface CallRelayFallback {
  /**
   * Places the call on a relay node and tells both devices where to connect
   * (e.g. a notice to `rooms.session(caller.sessionId)` and
   * `rooms.session(callee.sessionId)`). Resolves with the node's name once
   * both were told; rejects if no relay can take the call (it then ends
   * `failed`). The call id stays the same. The clients then report
   * `call:report { event: 'connected' }` as usual; if none does within
   * CALL_CONNECT_TIMEOUT_S, the call ends `failed`.
   */
  moveToRelay(call: RelayFallbackCall): Promise<{ relayNode: string }>;
}

export interface RelayFallbackParty {
  userId: string;
  /** The device the call is bound to; reach it with `rooms.session(sessionId)`. */
  sessionId: string;
  deviceId: string;
}

export interface RelayFallbackCall {
  callId: string;
  video: boolean;
  caller: RelayFallbackParty;
  callee: RelayFallbackParty;
}
