/**
 * The relay media path: mediasoup-client over the hub's `media:*` events.
 * Kept in its own module so apps that never reach the relay do not load
 * mediasoup-client (CallhubClient imports it lazily).
 */
import { Device } from 'mediasoup-client';
import type { Consumer, Producer, RtpCapabilities, RtpParameters, Transport, TransportOptions } from 'mediasoup-client/types';
import type { MediaProducer } from '../protocol/media.js';
import type { CallhubClient } from './CallhubClient.js';
import { ClientError } from './ClientError.js';
import type { RelayJoiner, RelayRoomHandle, RelayRoomHandlers } from './relayTypes.js';
import type { StatsReportLike } from './stats.js';

export interface RelayRoomOptions {
  /** mediasoup-client handler (e.g. 'ReactNative106'); detected when absent. */
  handlerName?: ConstructorParameters<typeof Device>[0] extends infer O ? O extends { handlerName?: infer H } ? H : never : never;
}

/**
 * This device's media in one relay room: a send transport with the local
 * tracks, a recv transport consuming every other participant's tracks, and
 * the room's notices. Rejoins by itself when the relay loses the room or
 * closes a transport. `close()` leaves the room and is idempotent.
 */
export class RelayRoom implements RelayRoomHandle {
  readonly kind = 'relay' as const;
  readonly roomId: string;
  readonly #client: CallhubClient;
  readonly #local: MediaStream;
  readonly #handlers: RelayRoomHandlers;
  readonly #opts: RelayRoomOptions;
  readonly #peerId: string;
  #device: Device | undefined;
  #send: Transport | undefined;
  #recv: Transport | undefined;
  readonly #producers = new Map<string, Producer>();
  readonly #consumers = new Map<string, { consumer: Consumer; producer: MediaProducer }>();
  /** Tracks announced while the recv transport did not exist yet (during a join), by producer id. */
  readonly #announced = new Map<string, MediaProducer>();
  /** Consumes in progress, by producer id. */
  readonly #inFlight = new Map<string, { cancelled: boolean }>();
  #offs: (() => void)[] = [];
  #audioPaused = false;
  /** media:active-speaker notices received so far (a join's reply is older than one that came while it was in flight). */
  #speakerNotices = 0;
  #closed = false;
  #joining: Promise<void> | undefined;
  #connectedOnce = false;

  private constructor(client: CallhubClient, roomId: string, local: MediaStream, handlers: RelayRoomHandlers, opts: RelayRoomOptions) {
    this.#client = client;
    this.roomId = roomId;
    this.#local = local;
    this.#handlers = handlers;
    this.#opts = opts;
    const session = client.session;
    if (!session) throw new ClientError('SIGNED_OUT', 'Sign in first');
    this.#peerId = `${session.userId}:${session.deviceId}`;
  }

  /** Joins the room's media: sends the local tracks and receives everyone else's. */
  static async join(client: CallhubClient, roomId: string, local: MediaStream, handlers: RelayRoomHandlers = {}, opts: RelayRoomOptions = {}): Promise<RelayRoom> {
    const room = new RelayRoom(client, roomId, local, handlers, opts);
    room.#listen();
    try {
      await room.#join();
    } catch (err) {
      room.close();
      throw err;
    }
    return room;
  }

  /** Remote tracks being received, with who sends them. */
  get remote(): { track: MediaStreamTrack; producer: MediaProducer }[] {
    return [...this.#consumers.values()].map((c) => ({ track: c.consumer.track, producer: c.producer }));
  }

  async getStats(): Promise<StatsReportLike[]> {
    const out: StatsReportLike[] = [];
    for (const t of [this.#send, this.#recv]) {
      if (t && !t.closed) out.push(await t.getStats().catch(() => new Map()));
    }
    return out;
  }

  /** Mutes the microphone on the relay (the producer stops sending; others are told). */
  async setAudioPaused(paused: boolean): Promise<void> {
    this.#audioPaused = paused;
    for (const p of this.#producers.values()) {
      if (p.kind !== 'audio' || p.closed) continue;
      if (paused) p.pause();
      else p.resume();
      await this.#client.request(paused ? 'media:producer-pause' : 'media:producer-resume', { roomId: this.roomId, producerId: p.id })
        .catch((err: unknown) => this.#handlers.onError?.(err));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    this.#teardown();
    void this.#client.request('media:leave', { roomId: this.roomId }).catch(() => undefined);
  }

  // --- internals -----------------------------------------------------------------

  #listen(): void {
    const on = this.#client.onNotice.bind(this.#client);
    const mine = (p: { roomId: string }) => p.roomId === this.roomId && !this.#closed;
    this.#offs.push(
      on('media:producer-added', (p) => {
        if (!mine(p) || p.peerId === this.#peerId) return;
        // While (re)joining, the recv transport may not exist yet: consume once it does.
        if (!this.#recv) this.#announced.set(p.producerId, p);
        else void this.#consume(p).catch((err: unknown) => this.#handlers.onError?.(err));
      }),
      on('media:producer-closed', (p) => {
        if (!mine(p)) return;
        this.#announced.delete(p.producerId);
        this.#dropConsumerOf(p.producerId);
      }),
      on('media:consumer-closed', (p) => {
        if (mine(p)) this.#dropConsumerOf(p.producerId);
      }),
      on('media:producer-paused', (p) => {
        if (!mine(p)) return;
        for (const c of this.#consumers.values()) {
          if (c.producer.producerId !== p.producerId) continue;
          c.producer = { ...c.producer, paused: p.paused };
          this.#handlers.onTrackPaused?.(c.producer, p.paused);
        }
      }),
      on('media:active-speaker', (p) => {
        if (!mine(p)) return;
        this.#speakerNotices += 1;
        this.#handlers.onActiveSpeaker?.(p.userId, p.peerId);
      }),
      on('media:transport-closed', (p) => {
        if (mine(p)) this.#rejoin();
      }),
      on('media:room-lost', (p) => {
        if (mine(p)) this.#rejoin();
      }),
      // After a socket reconnect, re-attach to the room; start over if the relay dropped our transports.
      this.#client.onConnected(({ first }) => {
        if (!first && !this.#closed) void this.#resume();
      }),
    );
  }

  #rejoin(): void {
    if (this.#closed || this.#joining) return;
    this.#handlers.onRejoining?.();
    this.#teardown();
    this.#joining = this.#join().catch((err: unknown) => this.#handlers.onError?.(err)).finally(() => { this.#joining = undefined; });
  }

  async #resume(): Promise<void> {
    try {
      const notices = this.#speakerNotices;
      const res = await this.#client.request('media:join', { roomId: this.roomId, resume: true });
      if (!res.resumed) {
        this.#rejoin();
        return;
      }
      // Changes announced while the socket was away were missed.
      if (res.activeSpeaker && this.#speakerNotices === notices) this.#handlers.onActiveSpeaker?.(res.activeSpeaker.userId, res.activeSpeaker.peerId);
      for (const p of res.producers) if (p.peerId !== this.#peerId) await this.#consume(p);
    } catch (err) {
      this.#handlers.onError?.(err);
    }
  }

  async #join(): Promise<void> {
    const notices = this.#speakerNotices;
    const joined = await this.#client.request('media:join', { roomId: this.roomId });
    if (this.#closed) return;
    // The relay announces speaker changes only: start from who speaks now, unless a newer notice came meanwhile.
    if (joined.activeSpeaker && this.#speakerNotices === notices) this.#handlers.onActiveSpeaker?.(joined.activeSpeaker.userId, joined.activeSpeaker.peerId);
    const device = this.#opts.handlerName ? new Device({ handlerName: this.#opts.handlerName }) : new Device();
    await device.load({ routerRtpCapabilities: joined.rtpCapabilities as unknown as RtpCapabilities });
    this.#device = device;
    this.#recv = await this.#createTransport('recv');
    this.#send = await this.#createTransport('send');
    for (const track of this.#local.getTracks()) {
      if (track.readyState === 'ended' || !device.canProduce(track.kind as 'audio' | 'video')) continue;
      const producer = await this.#send.produce({
        track,
        stopTracks: false, // the call owns its tracks; a rejoin produces them again
        appData: { source: track.kind === 'audio' ? 'mic' : 'camera' },
        ...(track.kind === 'audio' ? { codecOptions: { opusDtx: true, opusFec: true } } : {}),
      });
      this.#producers.set(producer.id, producer);
      if (track.kind === 'audio' && this.#audioPaused) {
        producer.pause();
        await this.#client.request('media:producer-pause', { roomId: this.roomId, producerId: producer.id });
      }
    }
    const announced = [...this.#announced.values()];
    this.#announced.clear();
    for (const p of [...joined.producers, ...announced]) if (p.peerId !== this.#peerId) await this.#consume(p);
  }

  async #createTransport(direction: 'send' | 'recv'): Promise<Transport> {
    const params = await this.#client.request('media:transport-create', { roomId: this.roomId, direction });
    const device = this.#device!;
    const options = params as unknown as TransportOptions;
    const transport = direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.#client.request('media:transport-connect', { roomId: this.roomId, transportId: transport.id, dtlsParameters: dtlsParameters as never })
        .then(() => callback(), (err: unknown) => errback(err instanceof Error ? err : new Error(String(err))));
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        this.#client.request('media:produce', {
          roomId: this.roomId,
          transportId: transport.id,
          kind,
          rtpParameters: rtpParameters as never,
          appData: appData as Record<string, string>,
        }).then(({ producerId }) => callback({ id: producerId }), (err: unknown) => errback(err instanceof Error ? err : new Error(String(err))));
      });
    }
    transport.on('connectionstatechange', (state) => {
      if (this.#closed) return;
      if (state === 'failed') this.#rejoin();
      if (state === 'connected' && !this.#connectedOnce) {
        this.#connectedOnce = true;
        this.#handlers.onConnected?.();
      }
    });
    return transport;
  }

  // A track can be both listed by media:join and announced by media:producer-added:
  // the in-flight set makes the second attempt a no-op before anything is awaited.
  async #consume(producer: MediaProducer): Promise<void> {
    const recv = this.#recv;
    const device = this.#device;
    const producerId = producer.producerId;
    if (!recv || !device || this.#closed) return;
    if (this.#inFlight.has(producerId) || [...this.#consumers.values()].some((c) => c.producer.producerId === producerId)) return;
    const flight = { cancelled: false };
    this.#inFlight.set(producerId, flight);
    try {
      const res = await this.#client.request('media:consume', {
        roomId: this.roomId,
        transportId: recv.id,
        producerId,
        rtpCapabilities: device.rtpCapabilities as never,
      });
      if (this.#closed || recv.closed || flight.cancelled) return;
      const consumer = await recv.consume({
        id: res.consumerId,
        producerId: res.producerId,
        kind: res.kind,
        rtpParameters: res.rtpParameters as unknown as RtpParameters,
      });
      if (this.#closed || flight.cancelled) {
        consumer.close();
        return;
      }
      const entry = { consumer, producer: { ...producer, paused: res.producerPaused } };
      this.#consumers.set(consumer.id, entry);
      await this.#client.request('media:consumer-resume', { roomId: this.roomId, consumerId: consumer.id });
      this.#handlers.onTrack?.(consumer.track, entry.producer);
    } finally {
      if (this.#inFlight.get(producerId) === flight) this.#inFlight.delete(producerId);
    }
  }

  #dropConsumerOf(producerId: string): void {
    const flight = this.#inFlight.get(producerId);
    if (flight) flight.cancelled = true;
    for (const [id, c] of this.#consumers) {
      if (c.producer.producerId !== producerId) continue;
      c.consumer.close();
      this.#consumers.delete(id);
      this.#handlers.onTrackEnded?.(c.producer);
    }
  }

  // Local mediasoup-client objects only; the relay side goes with media:leave or a new media:join.
  #teardown(): void {
    for (const flight of this.#inFlight.values()) flight.cancelled = true;
    this.#inFlight.clear();
    for (const c of this.#consumers.values()) {
      c.consumer.close();
      this.#handlers.onTrackEnded?.(c.producer);
    }
    this.#consumers.clear();
    for (const p of this.#producers.values()) p.close();
    this.#producers.clear();
    this.#send?.close();
    this.#recv?.close();
    this.#send = undefined;
    this.#recv = undefined;
    this.#connectedOnce = false;
  }
}

/** CallhubClient's default `relay` option: RelayRoom with mediasoup-client's detected handler (or `handlerName`). */
export function relayJoiner(opts: RelayRoomOptions = {}): RelayJoiner {
  return { join: (client, roomId, local, handlers) => RelayRoom.join(client, roomId, local, handlers, opts) };
}
