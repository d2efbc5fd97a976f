import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import { AppError } from '../shared/protocol/errors.js';
import type { TransportDirection } from '../shared/protocol/relayControl.js';
import type { DtlsParameters, MediaKind, RtpCapabilities, RtpParameters, TrackAppData } from '../shared/protocol/rtp.js';
import type { RecordingGuard } from './RecordingGuard.js';
import type { PoolWorker } from './WorkerPool.js';

/** Limits per participant: enough for mic + camera + screen (and a spare), bounded so one client cannot exhaust a worker. */
const MAX_TRANSPORTS = 4;
const MAX_PRODUCERS = 6;
const MAX_CONSUMERS = 500;

export type TransportCloseReason = 'ice_failed' | 'dtls_failed' | 'connect_timeout';

export interface ParticipantOptions {
  roomId: string;
  peerId: string;
  nodeId: string;
  /** The router (and worker) this participant's transports live on. */
  router: ms.Router;
  worker: PoolWorker;
  guard: RecordingGuard;
  /** Per-transport cap on incoming bitrate (bits/s); 0 disables. */
  maxIncomingBitrate: number;
  /** A transport not DTLS-connected this long after creation, or ICE-disconnected this long, is closed. */
  connectTimeoutMs: number;
}

/** appData of a participant's transports (it is also the recording guard's permit). */
export interface TransportAppData extends Record<string, unknown> {
  nodeId: string;
  roomId: string;
  peerId: string;
  direction: TransportDirection;
}

/** appData of producers: who sends, plus the client's own tags. */
export interface ProducerAppData extends Record<string, unknown> {
  peerId: string;
  client?: TrackAppData;
}

interface ParticipantEvents {
  producerClosed: [ms.Producer];
  producerPaused: [ms.Producer];
  /** A consumer closed because its producer went away (not because this participant closed it). */
  consumerClosed: [ms.Consumer];
  /** The relay closed a transport on its own. */
  transportClosed: [string, TransportCloseReason];
  closed: [];
}

interface OwnedTransport {
  transport: ms.WebRtcTransport;
  direction: TransportDirection;
  timer?: NodeJS.Timeout;
}

/**
 * One peer in a room: owns its WebRtcTransports and, through them, its
 * producers and consumers. Every id a request names is looked up here, so a
 * peer can only touch its own objects. close() is idempotent and cascades
 * (closing a transport closes its producers and consumers in mediasoup).
 */
export class Participant extends EventEmitter<ParticipantEvents> {
  readonly roomId: string;
  readonly peerId: string;
  readonly router: ms.Router;
  readonly worker: PoolWorker;
  readonly #opts: ParticipantOptions;
  readonly #transports = new Map<string, OwnedTransport>();
  readonly #producers = new Map<string, ms.Producer>();
  readonly #consumers = new Map<string, ms.Consumer>();
  /**
   * Creations under way (awaiting mediasoup), counted against the limits with
   * the objects that exist: a limit is checked and a slot taken in the same
   * synchronous step, so concurrent requests cannot all pass the check.
   */
  readonly #creating = { transports: 0, producers: 0, consumers: 0 };
  #closed = false;

  constructor(opts: ParticipantOptions) {
    super();
    this.#opts = opts;
    this.roomId = opts.roomId;
    this.peerId = opts.peerId;
    this.router = opts.router;
    this.worker = opts.worker;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get producers(): ReadonlyMap<string, ms.Producer> {
    return this.#producers;
  }

  get counts(): { transports: number; producers: number; consumers: number } {
    return { transports: this.#transports.size, producers: this.#producers.size, consumers: this.#consumers.size };
  }

  /** The participant's WebRtcTransports (for load figures). */
  get transports(): ms.WebRtcTransport[] {
    return [...this.#transports.values()].map((t) => t.transport);
  }

  async createTransport(direction: TransportDirection): Promise<ms.WebRtcTransport> {
    this.#assertOpen();
    const release = this.#reserve('transports', this.#transports.size, MAX_TRANSPORTS, `At most ${MAX_TRANSPORTS} transports per participant`);
    const { nodeId, roomId, peerId, guard } = this.#opts;
    const appData: TransportAppData = guard.permit('WebRtcTransport', { nodeId, roomId, peerId, direction });
    let transport: ms.WebRtcTransport;
    try {
      transport = await this.router.createWebRtcTransport({
        webRtcServer: this.worker.webRtcServer,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        appData,
      });
    } finally {
      release();
    }
    if (this.#closed) {
      // The participant left while the transport was being made.
      transport.close();
      throw new AppError('NOT_IN_ROOM', 'The participant left');
    }
    const owned: OwnedTransport = { transport, direction };
    this.#transports.set(transport.id, owned);
    this.#arm(owned, 'connect_timeout');
    transport.observer.once('close', () => {
      clearTimeout(owned.timer);
      this.#transports.delete(transport.id);
    });
    transport.on('dtlsstatechange', (state) => {
      if (state === 'connected') this.#disarm(owned);
      else if (state === 'failed' || state === 'closed') this.#closeTransport(owned, 'dtls_failed');
    });
    transport.on('icestatechange', (state) => {
      if (state === 'disconnected') this.#arm(owned, 'ice_failed');
      else if ((state === 'connected' || state === 'completed') && transport.dtlsState === 'connected') this.#disarm(owned);
    });
    if (direction === 'send' && this.#opts.maxIncomingBitrate > 0) {
      await transport.setMaxIncomingBitrate(this.#opts.maxIncomingBitrate).catch(() => undefined);
    }
    return transport;
  }

  async connectTransport(transportId: string, dtlsParameters: DtlsParameters): Promise<void> {
    const { transport } = this.#transport(transportId);
    try {
      await transport.connect({ dtlsParameters });
    } catch (err) {
      throw mediaError(err, 'BAD_REQUEST', 'The transport could not be connected');
    }
  }

  async restartIce(transportId: string): Promise<ms.IceParameters> {
    const { transport } = this.#transport(transportId);
    try {
      return await transport.restartIce();
    } catch (err) {
      throw mediaError(err, 'TRANSPORT_NOT_FOUND', 'ICE restart failed');
    }
  }

  async produce(transportId: string, kind: MediaKind, rtpParameters: RtpParameters, clientAppData?: TrackAppData): Promise<ms.Producer> {
    const { transport } = this.#transport(transportId, 'send');
    // mediasoup maps codecs by name; a kind that disagrees with them is a
    // client bug that would otherwise surface as silent media.
    const wrongKind = rtpParameters.codecs.find((c) => c.mimeType.split('/')[0]?.toLowerCase() !== kind);
    if (wrongKind) throw new AppError('RTP_PARAMETERS_INVALID', `Codec ${wrongKind.mimeType} is not ${kind}`);
    const release = this.#reserve('producers', this.#producers.size, MAX_PRODUCERS, `At most ${MAX_PRODUCERS} tracks per participant`);
    const appData: ProducerAppData = { peerId: this.peerId, ...(clientAppData ? { client: clientAppData } : {}) };
    let producer: ms.Producer;
    try {
      producer = await transport.produce({ kind, rtpParameters: structuredClone(rtpParameters) as ms.RtpParameters, appData });
    } catch (err) {
      throw mediaError(err, 'RTP_PARAMETERS_INVALID', 'The RTP parameters do not match the room');
    } finally {
      release();
    }
    if (this.#closed || transport.closed) {
      producer.close();
      throw new AppError('TRANSPORT_NOT_FOUND', 'The transport closed');
    }
    this.#producers.set(producer.id, producer);
    producer.observer.once('close', () => {
      this.#producers.delete(producer.id);
      this.emit('producerClosed', producer);
    });
    producer.observer.on('pause', () => this.emit('producerPaused', producer));
    producer.observer.on('resume', () => this.emit('producerPaused', producer));
    return producer;
  }

  /** Consumes a producer that is present on this participant's router (the room pipes it here first). */
  async consume(transportId: string, producerId: string, rtpCapabilities: RtpCapabilities): Promise<ms.Consumer> {
    const { transport } = this.#transport(transportId, 'recv');
    const release = this.#reserve('consumers', this.#consumers.size, MAX_CONSUMERS, `At most ${MAX_CONSUMERS} consumers per participant`);
    let consumer: ms.Consumer;
    try {
      consumer = await transport.consume({ producerId, rtpCapabilities: rtpCapabilities as ms.RtpCapabilities, paused: true, appData: { peerId: this.peerId } });
    } catch (err) {
      throw mediaError(err, 'RTP_PARAMETERS_INVALID', 'These RTP capabilities cannot receive that track');
    } finally {
      release();
    }
    if (this.#closed || transport.closed) {
      consumer.close();
      throw new AppError('TRANSPORT_NOT_FOUND', 'The transport closed');
    }
    this.#consumers.set(consumer.id, consumer);
    consumer.observer.once('close', () => { this.#consumers.delete(consumer.id); });
    consumer.once('producerclose', () => this.emit('consumerClosed', consumer));
    return consumer;
  }

  consumer(consumerId: string): ms.Consumer {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer || consumer.closed) throw new AppError('CONSUMER_NOT_FOUND');
    return consumer;
  }

  producer(producerId: string): ms.Producer {
    const producer = this.#producers.get(producerId);
    if (!producer || producer.closed) throw new AppError('PRODUCER_NOT_FOUND');
    return producer;
  }

  /** Closes everything the participant owns. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const owned of [...this.#transports.values()]) {
      clearTimeout(owned.timer);
      owned.transport.close();
    }
    this.#transports.clear();
    this.emit('closed');
    this.removeAllListeners();
  }

  #transport(transportId: string, direction?: TransportDirection): OwnedTransport {
    this.#assertOpen();
    const owned = this.#transports.get(transportId);
    if (!owned || owned.transport.closed) throw new AppError('TRANSPORT_NOT_FOUND');
    if (direction && owned.direction !== direction) {
      throw new AppError('TRANSPORT_NOT_FOUND', `No ${direction} transport with that id`);
    }
    return owned;
  }

  /**
   * Takes one slot of `kind` if `existing` plus the creations under way stay
   * below `max`, else throws BAD_REQUEST. Returns the release, to call as
   * soon as the awaited creation settles: the code after it puts the object
   * in its map (or closes it) in the same synchronous step, so no request
   * can see the slot neither reserved nor filled.
   */
  #reserve(kind: keyof Participant['counts'], existing: number, max: number, message: string): () => void {
    if (existing + this.#creating[kind] >= max) throw new AppError('BAD_REQUEST', message, { details: { limit: max } });
    this.#creating[kind] += 1;
    return () => {
      this.#creating[kind] -= 1;
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new AppError('NOT_IN_ROOM', 'The participant left');
  }

  #arm(owned: OwnedTransport, reason: TransportCloseReason): void {
    clearTimeout(owned.timer);
    owned.timer = setTimeout(() => this.#closeTransport(owned, reason), this.#opts.connectTimeoutMs);
  }

  #disarm(owned: OwnedTransport): void {
    clearTimeout(owned.timer);
    owned.timer = undefined;
  }

  #closeTransport(owned: OwnedTransport, reason: TransportCloseReason): void {
    clearTimeout(owned.timer);
    if (owned.transport.closed || this.#closed) return;
    owned.transport.close();
    this.emit('transportClosed', owned.transport.id, reason);
  }
}

/**
 * mediasoup signals bad parameters with TypeError/UnsupportedError (checked
 * in Node) or a plain Error from the worker; either way the caller sent
 * something the router cannot take. Closed objects give InvalidStateError.
 */
export function mediaError(err: unknown, code: 'RTP_PARAMETERS_INVALID' | 'BAD_REQUEST' | 'TRANSPORT_NOT_FOUND', message: string): AppError {
  if (err instanceof AppError) return err;
  const name = err instanceof Error ? err.name : '';
  const reason = err instanceof Error ? err.message.slice(0, 200) : String(err).slice(0, 200);
  if (name === 'InvalidStateError') return new AppError('TRANSPORT_NOT_FOUND', 'The transport is closed');
  return new AppError(code, message, { details: { reason } });
}
