import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';

export interface WorkerPoolOptions {
  nodeId: string;
  /** Number of workers (one per core). */
  size: number;
  listenIp: string;
  announcedIp?: string;
  /** Worker i listens on portBase + i (UDP and TCP); 0 picks free ports in [minPort, maxPort]. */
  portBase: number;
  /** Port range of the workers' own sockets (pipes between routers) and of picked ports. */
  minPort: number;
  maxPort: number;
  /** Consumers one worker should carry. */
  consumersPerWorker: number;
  log: Logger;
}

/** Live counts of everything on one worker, kept from mediasoup's observer events. */
export interface WorkerCounts {
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
}

/** One worker of the pool, with the WebRtcServer clients reach it through. */
export interface PoolWorker {
  readonly index: number;
  readonly worker: ms.Worker;
  readonly webRtcServer: ms.WebRtcServer;
  /** UDP and TCP port of the WebRtcServer. */
  readonly port: number;
  readonly counts: WorkerCounts;
}

interface PoolEvents {
  /** A worker process died; its routers (and so its rooms) are gone. A replacement is on its way. */
  died: [{ entry: PoolWorker; error: Error }];
  /** A replacement worker is ready at that index. */
  replaced: [PoolWorker];
}

const PICK_PORT_ATTEMPTS = 30;
const REPLACE_BACKOFF_MS = [0, 250, 1000, 2000, 5000];

/**
 * The node's mediasoup workers, one per configured core, each with a
 * WebRtcServer so clients reach every worker on one UDP and one TCP port.
 * It notices a worker's death, reports it (the node then drops that worker's
 * rooms) and starts a replacement on the same index and port.
 */
export class WorkerPool extends EventEmitter<PoolEvents> {
  readonly #opts: WorkerPoolOptions;
  readonly #slots: (PoolWorker | undefined)[];
  readonly #replaceTimers = new Set<NodeJS.Timeout>();
  #closed = false;

  private constructor(opts: WorkerPoolOptions) {
    super();
    this.#opts = opts;
    this.#slots = new Array<PoolWorker | undefined>(opts.size).fill(undefined);
  }

  static async create(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      for (let i = 0; i < opts.size; i++) pool.#slots[i] = await pool.#spawn(i);
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  /** Workers currently alive (a dead one is missing until its replacement is up). */
  get workers(): PoolWorker[] {
    return this.#slots.filter((w): w is PoolWorker => w !== undefined);
  }

  get size(): number {
    return this.#opts.size;
  }

  get consumersPerWorker(): number {
    return this.#opts.consumersPerWorker;
  }

  /** Whether the worker carries as many consumers as it should. */
  isFull(entry: PoolWorker): boolean {
    return entry.counts.consumers >= this.#opts.consumersPerWorker;
  }

  /** The worker with the fewest consumers (then routers), optionally among `among`. */
  leastLoaded(among: PoolWorker[] = this.workers): PoolWorker {
    const sorted = [...among].sort((a, b) => a.counts.consumers - b.counts.consumers || a.counts.routers - b.counts.routers || a.index - b.index);
    const best = sorted[0];
    if (!best) throw new Error('no live worker');
    return best;
  }

  /** Closes every worker (and so every router, transport and port). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#replaceTimers) clearTimeout(t);
    this.#replaceTimers.clear();
    for (const entry of this.workers) entry.worker.close();
    this.#slots.fill(undefined);
  }

  async #spawn(index: number): Promise<PoolWorker> {
    const { nodeId, minPort, maxPort, log } = this.#opts;
    const worker = await mediasoup.createWorker({
      logLevel: 'warn',
      rtcMinPort: minPort,
      rtcMaxPort: maxPort,
      appData: { nodeId, index },
    });
    let webRtcServer: ms.WebRtcServer;
    let port: number;
    try {
      ({ webRtcServer, port } = await this.#createWebRtcServer(worker, index));
    } catch (err) {
      worker.close();
      throw err;
    }
    const entry: PoolWorker = { index, worker, webRtcServer, port, counts: { routers: 0, transports: 0, producers: 0, consumers: 0 } };
    this.#count(entry);
    worker.once('died', (error) => this.#onDied(entry, error));
    log.info({ workerIndex: index, workerPid: worker.pid, port }, 'worker ready');
    return entry;
  }

  async #createWebRtcServer(worker: ms.Worker, index: number): Promise<{ webRtcServer: ms.WebRtcServer; port: number }> {
    const { listenIp, announcedIp, portBase, minPort, maxPort } = this.#opts;
    const listen = (port: number) => worker.createWebRtcServer({
      listenInfos: (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip: listenIp, port, ...(announcedIp ? { announcedIp } : {}) })),
      appData: { index },
    });
    if (portBase !== 0) {
      const port = portBase + index;
      return { webRtcServer: await listen(port), port };
    }
    // One port number for both protocols keeps firewall rules and docs
    // simple; a free UDP port may be taken for TCP, so try a few.
    let lastError: unknown;
    for (let attempt = 0; attempt < PICK_PORT_ATTEMPTS; attempt++) {
      const port = randomInt(minPort, maxPort + 1);
      try {
        return { webRtcServer: await listen(port), port };
      } catch (err) {
        lastError = err;
      }
    }
    throw new Error(`no free UDP+TCP port for worker ${index}: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  /** Keeps entry.counts in step with what exists on the worker, whoever created or closed it. */
  #count(entry: PoolWorker): void {
    const c = entry.counts;
    entry.worker.observer.on('newrouter', (router) => {
      c.routers += 1;
      router.observer.once('close', () => { c.routers -= 1; });
      router.observer.on('newtransport', (transport) => {
        // The recording guard may already have closed it.
        if (transport.closed) return;
        c.transports += 1;
        transport.observer.once('close', () => { c.transports -= 1; });
        transport.observer.on('newproducer', (producer) => {
          if (producer.closed) return;
          c.producers += 1;
          producer.observer.once('close', () => { c.producers -= 1; });
        });
        transport.observer.on('newconsumer', (consumer) => {
          if (consumer.closed) return;
          c.consumers += 1;
          consumer.observer.once('close', () => { c.consumers -= 1; });
        });
      });
    });
  }

  #onDied(entry: PoolWorker, error: Error): void {
    if (this.#closed || this.#slots[entry.index] !== entry) return;
    this.#opts.log.error({ workerIndex: entry.index, workerPid: entry.worker.pid, err: error.message }, 'worker died; replacing it');
    this.#slots[entry.index] = undefined;
    this.emit('died', { entry, error });
    this.#replace(entry.index, 0);
  }

  #replace(index: number, attempt: number): void {
    const delay = REPLACE_BACKOFF_MS[Math.min(attempt, REPLACE_BACKOFF_MS.length - 1)] ?? 5000;
    const timer = setTimeout(() => {
      this.#replaceTimers.delete(timer);
      if (this.#closed) return;
      this.#spawn(index).then((entry) => {
        if (this.#closed) {
          entry.worker.close();
          return;
        }
        this.#slots[index] = entry;
        this.emit('replaced', entry);
      }, (err: unknown) => {
        this.#opts.log.error({ workerIndex: index, err: err instanceof Error ? err.message : String(err), attempt }, 'replacement worker failed to start; retrying');
        this.#replace(index, attempt + 1);
      });
    }, delay);
    this.#replaceTimers.add(timer);
  }
}
