import type { Logger } from '../log.js';
import { parseTimerMember, timerMember, type ConferenceTimer } from './Conference.js';
import type { ConferenceStore } from './ConferenceStore.js';

export interface ConferenceTimersOptions {
  /** How often every hub scans the shared due set (ms). */
  scanIntervalMs: number;
  /** Entries handled per scan. */
  batch: number;
}

/**
 * Conference timers (ring, reconnect grace, max duration, pending facts)
 * that survive the hub that set them, as for calls: each is an entry of one
 * Redis sorted set scored by its due time, written by the transition that
 * starts it. The hub that starts a timer fires it on time locally; every hub
 * scans the set every second as the fallback; the store script that acts on
 * a timer claims its entry first (due, then ZREM), so it acts once.
 */
export class ConferenceTimers {
  readonly #store: ConferenceStore;
  readonly #fire: (conferenceId: string, timer: ConferenceTimer) => Promise<void>;
  readonly #log: Logger;
  readonly #opts: ConferenceTimersOptions;
  readonly #local = new Map<string, NodeJS.Timeout>();
  /** Entries being handled by this hub, so a scan does not start them twice. */
  readonly #inflight = new Set<string>();
  #scanTimer: NodeJS.Timeout | undefined;
  #scanning = false;
  #closed = false;

  constructor(
    store: ConferenceStore,
    fire: (conferenceId: string, timer: ConferenceTimer) => Promise<void>,
    log: Logger,
    opts: ConferenceTimersOptions,
  ) {
    this.#store = store;
    this.#fire = fire;
    this.#log = log;
    this.#opts = opts;
  }

  start(): void {
    if (this.#closed || this.#scanTimer) return;
    this.#scanTimer = setInterval(() => void this.#scan(), this.#opts.scanIntervalMs);
    this.#scanTimer.unref();
  }

  /** Arms the local, on-time firing of a timer whose entry a store script just wrote. */
  arm(conferenceId: string, timer: ConferenceTimer, dueAt: number): void {
    if (this.#closed) return;
    const member = timerMember(conferenceId, timer);
    clearTimeout(this.#local.get(member));
    // A few ms late, so the claim's `due <= now` check holds on this clock.
    const delay = Math.min(Math.max(0, dueAt - Date.now()) + 5, 2 ** 31 - 1);
    const t = setTimeout(() => {
      this.#local.delete(member);
      void this.#run(member);
    }, delay);
    t.unref();
    this.#local.set(member, t);
  }

  /** Forgets a local timer whose entry a transition removed (the entry itself is gone already). */
  disarm(conferenceId: string, timer: ConferenceTimer): void {
    const member = timerMember(conferenceId, timer);
    clearTimeout(this.#local.get(member));
    this.#local.delete(member);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#scanTimer);
    for (const t of this.#local.values()) clearTimeout(t);
    this.#local.clear();
  }

  async #scan(): Promise<void> {
    if (this.#scanning || this.#closed) return;
    this.#scanning = true;
    try {
      const due = await this.#store.dueTimers(Date.now(), this.#opts.batch);
      await Promise.all(due.map((member) => this.#run(member)));
    } catch (err) {
      this.#log.warn({ err }, 'conference timer scan failed');
    } finally {
      this.#scanning = false;
    }
  }

  async #run(member: string): Promise<void> {
    if (this.#closed || this.#inflight.has(member)) return;
    this.#inflight.add(member);
    try {
      const parsed = parseTimerMember(member);
      if (!parsed) {
        this.#log.warn({ member: member.slice(0, 80) }, 'dropping malformed conference timer');
        await this.#store.dropTimer(member);
        return;
      }
      await this.#fire(parsed.conferenceId, parsed.timer);
    } catch (err) {
      // The entry stays in the set; the next scan retries it.
      if (!this.#closed) this.#log.error({ err, member }, 'conference timer failed');
    } finally {
      this.#inflight.delete(member);
    }
  }
}
