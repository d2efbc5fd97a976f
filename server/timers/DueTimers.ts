import type { Logger } from '../../shared/runtime/log.js';

/**
 * The shared due set of a domain: one Redis sorted set scored by due time,
 * owned by the domain's store (its transition scripts write and claim the
 * entries).
 */
export interface DueSet {
  /** Members due by `now`, oldest first. */
  dueTimers(now: number, limit: number): Promise<string[]>;
  /** Drops an entry that can never fire usefully (malformed, or its subject is gone). */
  dropTimer(member: string): Promise<void>;
}

/** How a domain writes a timer of one of its objects as a due-set member, and reads it back. */
export interface TimerCodec<T> {
  member(id: string, timer: T): string;
  /** `null` for a member this domain never writes. */
  parse(member: string): { id: string; timer: T } | null;
}

export interface DueTimersOptions {
  /** How often every hub scans the shared due set (ms). */
  scanIntervalMs: number;
  /** Entries handled per scan. */
  batch: number;
}

/**
 * Timers that survive the death of the hub that set them. Each timer is an
 * entry in one Redis sorted set scored by its due time, written by the same
 * store script as the transition that starts it. The hub that starts a timer
 * also arms a local timeout so it fires on time; every hub scans the set
 * every `scanIntervalMs` as the fallback. Whoever fires first claims the
 * entry atomically inside the transition script (ZSCORE <= now, then ZREM),
 * so a timer acts once; `fire` is that transition.
 */
export class DueTimers<T> {
  readonly #kind: string;
  readonly #set: DueSet;
  readonly #codec: TimerCodec<T>;
  readonly #fire: (id: string, timer: T) => Promise<void>;
  readonly #log: Logger;
  readonly #opts: DueTimersOptions;
  readonly #local = new Map<string, NodeJS.Timeout>();
  /** Entries being handled by this hub, so a scan does not start them twice. */
  readonly #inflight = new Set<string>();
  #scanTimer: NodeJS.Timeout | undefined;
  #scanning = false;
  #closed = false;

  /** `kind` names the timers in logs ('call', 'conference'). */
  constructor(
    kind: string,
    set: DueSet,
    codec: TimerCodec<T>,
    fire: (id: string, timer: T) => Promise<void>,
    log: Logger,
    opts: DueTimersOptions,
  ) {
    this.#kind = kind;
    this.#set = set;
    this.#codec = codec;
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
  arm(id: string, timer: T, dueAt: number): void {
    if (this.#closed) return;
    const member = this.#codec.member(id, timer);
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
  disarm(id: string, timer: T): void {
    const member = this.#codec.member(id, timer);
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
      const due = await this.#set.dueTimers(Date.now(), this.#opts.batch);
      await Promise.all(due.map((member) => this.#run(member)));
    } catch (err) {
      this.#log.warn({ err }, `${this.#kind} timer scan failed`);
    } finally {
      this.#scanning = false;
    }
  }

  async #run(member: string): Promise<void> {
    if (this.#closed || this.#inflight.has(member)) return;
    this.#inflight.add(member);
    try {
      const parsed = this.#codec.parse(member);
      if (!parsed) {
        this.#log.warn({ member: member.slice(0, 80) }, `dropping malformed ${this.#kind} timer`);
        await this.#set.dropTimer(member);
        return;
      }
      await this.#fire(parsed.id, parsed.timer);
    } catch (err) {
      // The entry stays in the set; the next scan retries it.
      if (!this.#closed) this.#log.error({ err, member }, `${this.#kind} timer failed`);
    } finally {
      this.#inflight.delete(member);
    }
  }
}
