import type { Redis } from 'ioredis';
import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';
import {
  RELAY_STALE_INTERVALS,
  relayRegistryKeys,
  type NodeCounts,
  type NodeState,
  type RelayNodeReport,
  type WorkerLoad,
} from '../shared/protocol/relayControl.js';
import type { PoolWorker, WorkerPool } from './WorkerPool.js';

export interface LoadSource {
  pool: WorkerPool;
  state(): NodeState;
  /** Rooms and peers on the node. */
  counts(): Pick<NodeCounts, 'rooms' | 'peers'>;
  /** Participants' WebRtcTransports on one worker (for bitrates). */
  transportsOn(worker: PoolWorker): ms.WebRtcTransport[];
}

export interface LoadReporterOptions {
  nodeId: string;
  controlUrl: string;
  intervalMs: number;
  redis: Redis;
  source: LoadSource;
  log: Logger;
  onReport?: (report: RelayNodeReport) => void;
}

interface CpuSample {
  cpuMs: number;
  at: number;
}

/**
 * Publishes the node in the Redis registry: a JSON report under a key that
 * expires after RELAY_STALE_INTERVALS intervals (a node that stops reporting
 * drops out by itself), and its id in a sorted set scored by report time so
 * hubs can list nodes without SCAN. CPU per worker comes from
 * getResourceUsage() deltas (user + system time over wall time).
 */
export class LoadReporter {
  readonly #opts: LoadReporterOptions;
  readonly #startedAt = Date.now();
  readonly #cpu = new Map<number, CpuSample>();
  #timer?: NodeJS.Timeout;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  #last?: RelayNodeReport;

  constructor(opts: LoadReporterOptions) {
    this.#opts = opts;
  }

  get lastReport(): RelayNodeReport | undefined {
    return this.#last;
  }

  /** Publishes a first report, then one per interval. */
  async start(): Promise<void> {
    await this.reportNow();
    this.#schedule();
  }

  /**
   * Publishes now (e.g. right after a drain state change). Reports run one
   * after another, so one asked for after a change always reflects it.
   */
  reportNow(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#report());
    return this.#chain;
  }

  /** Stops reporting and removes the node from the registry. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#chain;
    const { redis, nodeId } = this.#opts;
    await redis.multi().del(relayRegistryKeys.node(nodeId)).zrem(relayRegistryKeys.nodes, nodeId).exec().catch(() => undefined);
  }

  /** Builds the current report without publishing it. */
  async measure(): Promise<RelayNodeReport> {
    const { source, nodeId, controlUrl, intervalMs } = this.#opts;
    const workers = await Promise.all(source.pool.workers.map((w) => this.#measureWorker(w)));
    const live = new Set(workers.map((w) => w.pid));
    for (const pid of this.#cpu.keys()) if (!live.has(pid)) this.#cpu.delete(pid);
    const totals = { routers: 0, transports: 0, producers: 0, consumers: 0 };
    for (const w of workers) {
      totals.routers += w.routers;
      totals.transports += w.transports;
      totals.producers += w.producers;
      totals.consumers += w.consumers;
    }
    const meanCpu = workers.length ? workers.reduce((s, w) => s + w.cpu, 0) / workers.length : 1;
    const capacity = source.pool.consumersPerWorker * Math.max(1, source.pool.size);
    // A node with dead workers being replaced counts the missing ones as full.
    const missing = source.pool.size - workers.length;
    const fill = (totals.consumers + missing * source.pool.consumersPerWorker) / capacity;
    return {
      nodeId,
      controlUrl,
      state: source.state(),
      load: round(Math.max(meanCpu, fill)),
      reportedAt: Date.now(),
      intervalMs,
      startedAt: this.#startedAt,
      counts: { ...source.counts(), ...totals },
      workers,
    };
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.reportNow().finally(() => this.#schedule());
    }, this.#opts.intervalMs);
  }

  async #report(): Promise<void> {
    if (this.#stopped) return;
    const { redis, nodeId, intervalMs, log } = this.#opts;
    try {
      const report = await this.measure();
      if (this.#stopped) return;
      const ttlMs = Math.ceil(intervalMs * RELAY_STALE_INTERVALS);
      await redis
        .multi()
        .set(relayRegistryKeys.node(nodeId), JSON.stringify(report), 'PX', ttlMs)
        .zadd(relayRegistryKeys.nodes, report.reportedAt, nodeId)
        .exec();
      this.#last = report;
      this.#opts.onReport?.(report);
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'load report failed');
    }
  }

  async #measureWorker(entry: PoolWorker): Promise<WorkerLoad> {
    const pid = entry.worker.pid;
    let cpu = 0;
    try {
      const usage = await entry.worker.getResourceUsage();
      const now = Date.now();
      const cpuMs = usage.ru_utime + usage.ru_stime;
      const prev = this.#cpu.get(pid);
      if (prev && now > prev.at) cpu = Math.max(0, (cpuMs - prev.cpuMs) / (now - prev.at));
      this.#cpu.set(pid, { cpuMs, at: now });
    } catch {
      // A worker dying between listing and asking: it counts as idle here and is replaced by the pool.
    }
    let bitrateIn = 0;
    let bitrateOut = 0;
    const stats = await Promise.all(this.#opts.source.transportsOn(entry).map((t) => t.getStats().catch(() => [])));
    for (const list of stats) {
      for (const s of list) {
        bitrateIn += s.recvBitrate ?? 0;
        bitrateOut += s.sendBitrate ?? 0;
      }
    }
    return { index: entry.index, pid, cpu: round(cpu), ...entry.counts, bitrateIn, bitrateOut, port: entry.port };
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
