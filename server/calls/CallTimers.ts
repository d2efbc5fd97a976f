import type { Logger } from '../../shared/runtime/log.js';
import { DueTimers, type DueTimersOptions, type TimerCodec } from '../timers/DueTimers.js';
import type { CallTimer } from './CallSession.js';
import { parseTimerMember, timerMember, type CallStore } from './CallStore.js';

const codec: TimerCodec<CallTimer> = {
  member: timerMember,
  parse(member) {
    const parsed = parseTimerMember(member);
    return parsed && { id: parsed.callId, timer: parsed.timer };
  },
};

/**
 * Call timers (ring, connect, reconnect grace, max duration, fact): entries
 * `<callId>|<timer>` of the calls' due set, claimed by CallStore's transition
 * scripts (see DueTimers for how they survive the hub that set them).
 */
export class CallTimers extends DueTimers<CallTimer> {
  constructor(store: CallStore, fire: (callId: string, timer: CallTimer) => Promise<void>, log: Logger, opts: DueTimersOptions) {
    super('call', store, codec, fire, log, opts);
  }
}
