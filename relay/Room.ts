import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';
import { AppError } from '../shared/protocol/errors.js';
import type { ProducerInfo } from '../shared/protocol/relayControl.js';
import type { MediaKind, RtpCapabilities, RtpParameters, TrackAppData } from '../shared/protocol/rtp.js';
import { Participant, mediaError, type ProducerAppData, type TransportCloseReason } from './Participant.js';
import type { RecordingGuard } from './RecordingGuard.js';
import type { PoolWorker, WorkerPool } from './WorkerPool.js';

/** Codecs every room offers: Opus, VP8 (everyone), VP9, and H.264 constrained baseline (hardware encoders on phones). */
export const ROOM_MEDIA_CODECS: ms.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0, 'x-google-start-bitrate': 1000 } },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 },
  },
];

export interface RoomOptions {
  roomId: string;
  nodeId: string;
  pool: WorkerPool;
  guard: RecordingGuard;
  log: Logger;
  maxIncomingBitrate: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  activeSpeakerIntervalMs: number;
}

/** One router of the room, on one worker. The first is the room's main router. */
interface RouterSlot {
  readonly worker: PoolWorker;
  readonly router: ms.Router;
  peers: number;
}

/** A participant's own producer (not a pipe copy). */
interface OriginProducer {
  readonly producer: ms.Producer;
  readonly participant: Participant;
  readonly slot: RouterSlot;
}

type PipePair = Map<RouterSlot, ms.PipeTransport>;

interface RoomEvents {
  producerAdded: [Participant, ms.Producer];
  producerClosed: [{ peerId: string; producerId: string; kind: MediaKind }];
  producerPaused: [{ peerId: string; producer: ms.Producer }];
  consumerClosed: [{ peerId: string; consumer: ms.Consumer }];
  transportClosed: [{ peerId: string; transportId: string; reason: TransportCloseReason }];
  activeSpeaker: [{ peerId: string; producerId: string }];
  /** No peers for idleTimeoutMs. */
  idle: [];
}

/**
 * A room: a router on one worker, more routers on other workers once the
 * first worker is full (producers cross between them through PipeTransport
 * pairs, created here and permitted by the recording guard), the room's
 * participants, and an ActiveSpeakerObserver on the main router. close() is
 * idempotent and cascades through routers to every transport.
 */
export class Room extends EventEmitter<RoomEvents> {
  readonly roomId: string;
  readonly #opts: RoomOptions;
  readonly #main: RouterSlot;
  readonly #slots = new Map<string, RouterSlot>();
  readonly #peers = new Map<string, Participant>();
  readonly #producers = new Map<string, OriginProducer>();
  readonly #pipes = new Map<string, Promise<PipePair>>();
  readonly #piped = new Map<string, Promise<void>>();
  readonly #speaker: ms.ActiveSpeakerObserver;
  /** The dominant speaker the observer last picked (announced only when it changes, so kept for peers joining later). */
  #activeSpeaker: { peerId: string; producerId: string } | undefined;
  #joins: Promise<unknown> = Promise.resolve();
  #idleTimer?: NodeJS.Timeout;
  #closed = false;

  private constructor(opts: RoomOptions, main: RouterSlot, speaker: ms.ActiveSpeakerObserver) {
    super();
    this.roomId = opts.roomId;
    this.#opts = opts;
    this.#main = main;
    this.#slots.set(main.router.id, main);
    this.#speaker = speaker;
    speaker.on('dominantspeaker', ({ producer }) => this.setActiveSpeaker(producer.id));
    this.#armIdle();
  }

  /** Creates the room's main router on the pool's least loaded worker. */
  static async create(opts: RoomOptions): Promise<Room> {
    const worker = opts.pool.leastLoaded();
    const router = await createRouter(worker, opts);
    try {
      const speaker = await router.createActiveSpeakerObserver({ interval: opts.activeSpeakerIntervalMs });
      return new Room(opts, { worker, router, peers: 0 }, speaker);
    } catch (err) {
      router.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  get rtpCapabilities(): ms.RtpCapabilities {
    return this.#main.router.rtpCapabilities;
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  /** The room's routers, main first (for dumps and tests). */
  get routers(): ms.Router[] {
    return [...this.#slots.values()].map((s) => s.router);
  }

  /** Workers the room has a router on. */
  get workers(): PoolWorker[] {
    return [...this.#slots.values()].map((s) => s.worker);
  }

  get participants(): Participant[] {
    return [...this.#peers.values()];
  }

  /**
   * Adds a peer, or starts it over: a peer that is already here is closed
   * first, unless `resume` asks to keep it. Joins run one at a time so two of
   * them never both open a router.
   */
  join(peerId: string, opts: { resume?: boolean } = {}): Promise<{ participant: Participant; resumed: boolean }> {
    const run = this.#joins.then(() => this.#join(peerId, opts.resume ?? false));
    this.#joins = run.catch(() => undefined);
    return run;
  }

  /** Removes a peer and everything it owns. Idempotent. */
  leave(peerId: string): void {
    this.#peers.get(peerId)?.close();
  }

  participant(peerId: string): Participant {
    this.#assertOpen();
    const p = this.#peers.get(peerId);
    if (!p) throw new AppError('NOT_IN_ROOM', 'No such peer in this room');
    return p;
  }

  /** The current dominant speaker while its audio track is open, else null. */
  get activeSpeaker(): { peerId: string; producerId: string } | null {
    const current = this.#activeSpeaker;
    if (!current) return null;
    const origin = this.#producers.get(current.producerId);
    return origin && !origin.producer.closed ? { ...current } : null;
  }

  /**
   * The room's ActiveSpeakerObserver picked `producerId` (one of the room's
   * audio producers) as the dominant speaker: remembered for peers joining
   * later, and announced (`activeSpeaker`). Unknown or closed producers are
   * ignored. Tests call it to stand in for real audio.
   */
  setActiveSpeaker(producerId: string): void {
    if (this.#closed) return;
    const origin = this.#producers.get(producerId);
    if (!origin || origin.producer.closed || origin.producer.kind !== 'audio') return;
    this.#activeSpeaker = { peerId: origin.participant.peerId, producerId };
    this.emit('activeSpeaker', { ...this.#activeSpeaker });
  }

  /** Every producer of the room, except those of `exceptPeerId`. */
  producerInfos(exceptPeerId?: string): ProducerInfo[] {
    const out: ProducerInfo[] = [];
    for (const { producer, participant } of this.#producers.values()) {
      if (participant.peerId === exceptPeerId || producer.closed) continue;
      out.push(producerInfo(participant.peerId, producer));
    }
    return out;
  }

  async produce(peerId: string, transportId: string, kind: MediaKind, rtpParameters: RtpParameters, appData?: TrackAppData): Promise<ms.Producer> {
    const participant = this.participant(peerId);
    const producer = await participant.produce(transportId, kind, rtpParameters, appData);
    if (this.#closed) throw new AppError('ROOM_NOT_FOUND');
    const origin: OriginProducer = { producer, participant, slot: this.#slotOf(participant) };
    this.#producers.set(producer.id, origin);
    if (kind === 'audio') this.#observeSpeaker(origin);
    this.emit('producerAdded', participant, producer);
    return producer;
  }

  async consume(peerId: string, transportId: string, producerId: string, rtpCapabilities: RtpCapabilities): Promise<ms.Consumer> {
    const participant = this.participant(peerId);
    const origin = this.#producers.get(producerId);
    if (!origin || origin.producer.closed) throw new AppError('PRODUCER_NOT_FOUND');
    let consumable: boolean;
    try {
      consumable = origin.slot.router.canConsume({ producerId, rtpCapabilities: rtpCapabilities as ms.RtpCapabilities });
    } catch (err) {
      throw mediaError(err, 'RTP_PARAMETERS_INVALID', 'The RTP capabilities are not valid');
    }
    if (!consumable) throw new AppError('RTP_PARAMETERS_INVALID', 'These RTP capabilities cannot receive that track');
    const target = this.#slotOf(participant);
    if (target !== origin.slot) await this.#pipe(origin, target);
    return participant.consume(transportId, producerId, rtpCapabilities);
  }

  /** Closes every router of the room, and with them every transport, producer, consumer and pipe. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    for (const p of this.#peers.values()) p.close();
    this.#peers.clear();
    for (const slot of this.#slots.values()) slot.router.close();
    this.#slots.clear();
    this.#producers.clear();
    this.#pipes.clear();
    this.#piped.clear();
    this.removeAllListeners();
  }

  async #join(peerId: string, resume: boolean): Promise<{ participant: Participant; resumed: boolean }> {
    this.#assertOpen();
    const existing = this.#peers.get(peerId);
    if (existing && resume) return { participant: existing, resumed: true };
    existing?.close();
    const slot = await this.#slotForNewPeer();
    this.#assertOpen();
    const participant = new Participant({
      roomId: this.roomId,
      peerId,
      nodeId: this.#opts.nodeId,
      router: slot.router,
      worker: slot.worker,
      guard: this.#opts.guard,
      maxIncomingBitrate: this.#opts.maxIncomingBitrate,
      connectTimeoutMs: this.#opts.connectTimeoutMs,
    });
    this.#peers.set(peerId, participant);
    slot.peers += 1;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;

    participant.on('producerClosed', (producer) => {
      this.#producers.delete(producer.id);
      if (this.#activeSpeaker?.producerId === producer.id) this.#activeSpeaker = undefined;
      if (!this.#closed) this.emit('producerClosed', { peerId, producerId: producer.id, kind: producer.kind });
    });
    participant.on('producerPaused', (producer) => {
      if (!this.#closed) this.emit('producerPaused', { peerId, producer });
    });
    participant.on('consumerClosed', (consumer) => {
      if (!this.#closed) this.emit('consumerClosed', { peerId, consumer });
    });
    participant.on('transportClosed', (transportId, reason) => {
      if (!this.#closed) this.emit('transportClosed', { peerId, transportId, reason });
    });
    participant.once('closed', () => this.#onParticipantClosed(participant, slot));
    return { participant, resumed: false };
  }

  #onParticipantClosed(participant: Participant, slot: RouterSlot): void {
    if (this.#closed) return;
    if (this.#peers.get(participant.peerId) === participant) this.#peers.delete(participant.peerId);
    slot.peers -= 1;
    // An overflow router nobody uses any more goes, with its pipes.
    if (slot !== this.#main && slot.peers === 0) {
      this.#slots.delete(slot.router.id);
      slot.router.close();
    }
    if (this.#peers.size === 0) this.#armIdle();
  }

  /** The first router whose worker has room; else a new router on the least loaded worker that has room; else the least loaded router. */
  async #slotForNewPeer(): Promise<RouterSlot> {
    const { pool } = this.#opts;
    const slots = [...this.#slots.values()];
    const open = slots.find((s) => !pool.isFull(s.worker));
    if (open) return open;
    const used = new Set(slots.map((s) => s.worker));
    const candidates = pool.workers.filter((w) => !used.has(w) && !pool.isFull(w));
    if (candidates.length === 0) {
      return slots.sort((a, b) => a.worker.counts.consumers - b.worker.counts.consumers)[0] ?? this.#main;
    }
    const worker = pool.leastLoaded(candidates);
    const router = await createRouter(worker, this.#opts);
    if (this.#closed) {
      router.close();
      throw new AppError('ROOM_NOT_FOUND');
    }
    const slot: RouterSlot = { worker, router, peers: 0 };
    this.#slots.set(router.id, slot);
    this.#opts.log.info({ roomId: this.roomId, workerIndex: worker.index }, 'room spans another worker');
    return slot;
  }

  #slotOf(participant: Participant): RouterSlot {
    const slot = this.#slots.get(participant.router.id);
    if (!slot) throw new AppError('NOT_IN_ROOM', 'The participant\'s router is gone');
    return slot;
  }

  /** Audio from every router reaches the main router's ActiveSpeakerObserver (through a pipe when needed). */
  #observeSpeaker(origin: OriginProducer): void {
    const { producer } = origin;
    const add = () => this.#speaker.addProducer({ producerId: producer.id });
    const done = origin.slot === this.#main ? add() : this.#pipe(origin, this.#main).then(add);
    done.catch((err: unknown) => {
      if (!producer.closed && !this.#closed) this.#opts.log.warn({ roomId: this.roomId, err: err instanceof Error ? err.message : String(err) }, 'active speaker observer could not take a producer');
    });
  }

  /** Makes `origin`'s producer available on `target`'s router (same producer id). Idempotent per producer and router. */
  #pipe(origin: OriginProducer, target: RouterSlot): Promise<void> {
    const key = `${origin.producer.id}@${target.router.id}`;
    let piping = this.#piped.get(key);
    if (!piping) {
      piping = this.#pipeProducer(origin, target, key);
      this.#piped.set(key, piping);
      piping.catch(() => this.#piped.delete(key));
    }
    return piping;
  }

  async #pipeProducer(origin: OriginProducer, target: RouterSlot, key: string): Promise<void> {
    const pair = await this.#pipePair(origin.slot, target);
    const local = pair.get(origin.slot)!;
    const remote = pair.get(target)!;
    const { producer } = origin;
    const pipeConsumer = await local.consume({ producerId: producer.id });
    let pipeProducer: ms.Producer;
    try {
      pipeProducer = await remote.produce({
        id: producer.id,
        kind: pipeConsumer.kind,
        rtpParameters: pipeConsumer.rtpParameters,
        paused: pipeConsumer.producerPaused,
        appData: { ...(producer.appData as ProducerAppData), pipe: true },
      });
    } catch (err) {
      pipeConsumer.close();
      throw err;
    }
    if (producer.closed || pipeConsumer.closed) {
      pipeConsumer.close();
      pipeProducer.close();
      throw new AppError('PRODUCER_NOT_FOUND');
    }
    if (pipeProducer.paused !== producer.paused) await (producer.paused ? pipeProducer.pause() : pipeProducer.resume());
    pipeConsumer.observer.once('close', () => pipeProducer.close());
    pipeConsumer.observer.on('pause', () => { void pipeProducer.pause().catch(() => undefined); });
    pipeConsumer.observer.on('resume', () => { void pipeProducer.resume().catch(() => undefined); });
    pipeProducer.observer.once('close', () => {
      pipeConsumer.close();
      this.#piped.delete(key);
    });
  }

  /** A connected PipeTransport pair between two routers of this room, one per pair of routers. */
  #pipePair(a: RouterSlot, b: RouterSlot): Promise<PipePair> {
    const key = [a.router.id, b.router.id].sort().join('|');
    let pair = this.#pipes.get(key);
    if (!pair) {
      pair = this.#createPipePair(a, b, key);
      this.#pipes.set(key, pair);
      pair.catch(() => this.#pipes.delete(key));
    }
    return pair;
  }

  async #createPipePair(a: RouterSlot, b: RouterSlot, key: string): Promise<PipePair> {
    const { guard, nodeId } = this.#opts;
    const create = (slot: RouterSlot) => slot.router.createPipeTransport({
      listenIp: '127.0.0.1',
      enableSctp: false,
      enableRtx: false,
      enableSrtp: false,
      appData: guard.permit('PipeTransport', { nodeId, roomId: this.roomId, pipe: true }),
    });
    const results = await Promise.allSettled([create(a), create(b)]);
    const [ra, rb] = results;
    if (ra.status !== 'fulfilled' || rb.status !== 'fulfilled') {
      for (const r of results) if (r.status === 'fulfilled') r.value.close();
      throw ra.status === 'rejected' ? ra.reason : (rb as PromiseRejectedResult).reason;
    }
    const ta = ra.value;
    const tb = rb.value;
    try {
      await Promise.all([
        ta.connect({ ip: tb.tuple.localIp, port: tb.tuple.localPort }),
        tb.connect({ ip: ta.tuple.localIp, port: ta.tuple.localPort }),
      ]);
    } catch (err) {
      ta.close();
      tb.close();
      throw err;
    }
    // Either end closing (its router closed) takes the other with it; a
    // later pipe between these routers builds a new pair.
    const drop = () => {
      ta.close();
      tb.close();
      this.#pipes.delete(key);
    };
    ta.observer.once('close', drop);
    tb.observer.once('close', drop);
    return new Map([[a, ta], [b, tb]]);
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (!this.#closed && this.#peers.size === 0) this.emit('idle');
    }, this.#opts.idleTimeoutMs);
  }

  #assertOpen(): void {
    if (this.#closed) throw new AppError('ROOM_NOT_FOUND');
  }
}

function createRouter(worker: PoolWorker, opts: Pick<RoomOptions, 'nodeId' | 'roomId'>): Promise<ms.Router> {
  return worker.worker.createRouter({ mediaCodecs: ROOM_MEDIA_CODECS, appData: { nodeId: opts.nodeId, roomId: opts.roomId } });
}

export function producerInfo(peerId: string, producer: ms.Producer): ProducerInfo {
  const client = (producer.appData as ProducerAppData).client;
  return { peerId, producerId: producer.id, kind: producer.kind, paused: producer.paused, ...(client ? { appData: client } : {}) };
}
