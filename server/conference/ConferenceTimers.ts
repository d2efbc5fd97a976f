import type { Logger } from '../../shared/runtime/log.js';
import { DueTimers, type DueTimersOptions, type TimerCodec } from '../timers/DueTimers.js';
import { parseTimerMember, timerMember, type ConferenceTimer } from './Conference.js';
import type { ConferenceStore } from './ConferenceStore.js';

const codec: TimerCodec<ConferenceTimer> = {
  member: timerMember,
  parse(member) {
    const parsed = parseTimerMember(member);
    return parsed && { id: parsed.conferenceId, timer: parsed.timer };
  },
};

/**
 * Conference timers (ring, reconnect grace, max duration, pending facts):
 * entries `<conferenceId>|<timer>` of the conferences' due set, claimed by
 * ConferenceStore's transition scripts (see DueTimers for how they survive
 * the hub that set them).
 */
export class ConferenceTimers extends DueTimers<ConferenceTimer> {
  constructor(
    store: ConferenceStore,
    fire: (conferenceId: string, timer: ConferenceTimer) => Promise<void>,
    log: Logger,
    opts: DueTimersOptions,
  ) {
    super('conference', store, codec, fire, log, opts);
  }
}
