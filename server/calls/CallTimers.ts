import type { Logger } from '../log.js';
import type { CallTimer } from './CallSession.js';
import { parseTimerMember, timerMember, type CallStore } from './CallStore.js';

export interface CallTimersOptions {
  /** How often every hub scans the shared due set (ms). */
  scanIntervalMs: number;
  /** Entries handled per scan. */
  batch: number;
}

/**
 * Call timers (ring, connect, reconnect grace, max duration, fact) that
 * survive the death of the hub that set them. Each timer is an entry in one
 * Redis sorted set scored by its due time, written by the same script as
 * the transition that starts it. The hub that starts a timer also arms a
 * local timeout so it fires on time; every hub scans the set every second
 * as the fallback. Whoever fires first claims the entry atomically inside
 * the transition script (ZSCORE <= now, then ZREM), so a timer acts once.
 */
export class CallTimers {
  readonly #store: CallStore;
  readonly #fire: (callId: string, timer: CallTimer) => Promise<void>;
  readonly #log: Logger;
  readonly #opts: CallTimersOptions;
  readonly #local = new Map<string, NodeJS.Timeout>();
  /** Entries being handled by this hub, so a scan does not start them twice. */
  readonly #inflight = new Set<string>();
  #scanTimer: NodeJS.Timeout | undefined;
  #scanning = false;
  #closed = false;

  constructor(store: CallStore, fire: (callId: string, timer: CallTimer) => Promise<void>, log: Logger, opts: CallTimersOptions) {
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
  arm(callId: string, timer: CallTimer, dueAt: number): void {
    if (this.#closed) return;
    const member = timerMember(callId, timer);
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
      await Promise.all(due.map((d) => this.#run(d.member)));
    } catch (err) {
      this.#log.warn({ err }, 'call timer scan failed');
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
        this.#log.warn({ member: member.slice(0, 80) }, 'dropping malformed call timer');
        await this.#store.dropTimer(member);
        return;
      }
      await this.#fire(parsed.callId, parsed.timer);
    } catch (err) {
      // The entry stays in the set; the next scan retries it.
      if (!this.#closed) this.#log.error({ err, member }, 'call timer failed');
    } finally {
      this.#inflight.delete(member);
    }
  }
}
