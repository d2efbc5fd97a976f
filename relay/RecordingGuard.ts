import { EventEmitter } from 'node:events';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';

/** The only transports the relay may create: a participant's WebRtcTransport, or one end of a pipe between two of its routers. */
export type PermittedTransport = 'WebRtcTransport' | 'PipeTransport';

export interface Refusal {
  /** What was refused. */
  what: 'transport' | 'consumer' | 'dataProducer' | 'dataConsumer';
  /** mediasoup class of the refused object or of the transport it was made on. */
  type: string;
  routerId: string;
  workerPid: number;
  /** The relay node owning the worker, when the worker is one of ours. */
  nodeId?: string;
}

interface GuardEvents {
  refused: [Refusal];
}

/**
 * The never-records guarantee, enforced where mediasoup creates things.
 *
 * Media can only leave a call through a transport: a PlainTransport can send
 * RTP to any address (ffmpeg, GStreamer, a recorder), a DirectTransport hands
 * raw RTP to this process. The guard watches every worker of the process
 * (`mediasoup.observer` 'newworker' -> 'newrouter' -> 'newtransport') and
 * closes, before the creator gets it back, any transport that our own code did
 * not announce with a single-use permit: participants' WebRtcTransports
 * (Participant) and the two ends of a pipe between two of our routers (Room).
 * Consumers are allowed only on permitted transports; data channels are not
 * used at all and are refused everywhere. Every refusal is emitted, so the
 * node logs it and counts it in a metric.
 *
 * Process-wide, like `mediasoup.observer`: several relay nodes in one process
 * (tests) share one guard.
 */
export class RecordingGuard extends EventEmitter<GuardEvents> {
  static #instance: RecordingGuard | undefined;

  /** appData objects handed out by permit(), each good for one transport of one class. */
  readonly #permits = new WeakMap<object, PermittedTransport>();
  readonly #authorized = new WeakSet<ms.Transport>();
  #refusedCount = 0;

  private constructor() {
    super();
    mediasoup.observer.on('newworker', (worker) => this.#watchWorker(worker));
  }

  /** The process's guard; installs the observer hooks on first call (before any worker is created). */
  static install(): RecordingGuard {
    RecordingGuard.#instance ??= new RecordingGuard();
    return RecordingGuard.#instance;
  }

  /** Refusals since the process started. */
  get refusedCount(): number {
    return this.#refusedCount;
  }

  /**
   * Marks `appData` as the permit for exactly one transport of class `type`.
   * Pass the returned object as the transport's appData.
   */
  permit<T extends Record<string, unknown>>(type: PermittedTransport, appData: T): T {
    this.#permits.set(appData, type);
    return appData;
  }

  /** Whether the transport was created with a permit (and so belongs to a participant or a pipe of ours). */
  isAuthorized(transport: ms.Transport): boolean {
    return this.#authorized.has(transport);
  }

  #watchWorker(worker: ms.Worker): void {
    worker.observer.on('newrouter', (router) => {
      router.observer.on('newtransport', (transport) => this.#checkTransport(worker, router, transport));
    });
  }

  #checkTransport(worker: ms.Worker, router: ms.Router, transport: ms.Transport): void {
    const type = transport.constructor.name;
    const permitted = this.#permits.get(transport.appData);
    if (permitted !== undefined) this.#permits.delete(transport.appData); // single use
    if (permitted === undefined || permitted !== type) {
      transport.close();
      this.#refuse({ what: 'transport', type, worker, router });
      return;
    }
    this.#authorized.add(transport);
    transport.observer.on('newconsumer', (consumer) => {
      // Only reachable through a permitted transport, but the rule is stated
      // here so it holds even if a permit check above is ever loosened.
      if (!this.#authorized.has(transport)) {
        consumer.close();
        this.#refuse({ what: 'consumer', type, worker, router });
      }
    });
    transport.observer.on('newdataproducer', (dataProducer) => {
      dataProducer.close();
      this.#refuse({ what: 'dataProducer', type, worker, router });
    });
    transport.observer.on('newdataconsumer', (dataConsumer) => {
      dataConsumer.close();
      this.#refuse({ what: 'dataConsumer', type, worker, router });
    });
  }

  #refuse(r: { what: Refusal['what']; type: string; worker: ms.Worker; router: ms.Router }): void {
    this.#refusedCount += 1;
    const nodeId = (r.worker.appData as { nodeId?: unknown }).nodeId;
    const refusal: Refusal = { what: r.what, type: r.type, routerId: r.router.id, workerPid: r.worker.pid };
    if (typeof nodeId === 'string') refusal.nodeId = nodeId;
    this.emit('refused', refusal);
  }
}
