import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { types as ms } from 'mediasoup';
import { createLogger, type Logger } from '../shared/runtime/log.js';
import { createRedis } from '../shared/runtime/redis.js';
import { AppError } from '../shared/protocol/errors.js';
import type { NodeCounts, NodeState, RelayNotice, RelayNoticeName } from '../shared/protocol/relayControl.js';
import type { RelayConfig } from './config.js';
import { ControlServer, type ControlHandlers } from './ControlServer.js';
import { LoadReporter } from './LoadReporter.js';
import { Metrics } from './Metrics.js';
import { RecordingGuard, type Refusal } from './RecordingGuard.js';
import { Room, producerInfo } from './Room.js';
import { WorkerPool, type PoolWorker } from './WorkerPool.js';

export interface RelayNodeStartOptions {
  /** Use this logger instead of creating one (tests pass a silent one). */
  log?: Logger;
}

/**
 * A relay node: mediasoup workers, the rooms on them, the control server hubs
 * talk to, the load reports hubs place rooms by, /metrics and /healthz.
 * `RelayNode.start()` wires it; `close()` is idempotent: it leaves the
 * registry first, tells hubs which rooms go away, then closes everything.
 */
export class RelayNode {
  readonly nodeId: string;
  readonly controlUrl: string;
  readonly port: number;
  readonly pool: WorkerPool;
  readonly metrics: Metrics;
  readonly guard: RecordingGuard;
  readonly #config: RelayConfig;
  readonly #log: Logger;
  readonly #redis: Redis;
  readonly #http: HttpServer;
  readonly #rooms = new Map<string, Room>();
  readonly #creating = new Map<string, Promise<Room>>();
  #control!: ControlServer;
  #reporter!: LoadReporter;
  #state: NodeState = 'serving';
  #closing?: Promise<void>;
  readonly #onRefused = (r: Refusal) => this.#refused(r);

  private constructor(init: {
    config: RelayConfig; log: Logger; nodeId: string; redis: Redis; pool: WorkerPool; metrics: Metrics; guard: RecordingGuard; http: HttpServer; port: number; controlUrl: string;
  }) {
    this.#config = init.config;
    this.#log = init.log;
    this.nodeId = init.nodeId;
    this.#redis = init.redis;
    this.pool = init.pool;
    this.metrics = init.metrics;
    this.guard = init.guard;
    this.#http = init.http;
    this.port = init.port;
    this.controlUrl = init.controlUrl;
  }

  static async start(config: RelayConfig, opts: RelayNodeStartOptions = {}): Promise<RelayNode> {
    const nodeId = config.RELAY_ID ?? `relay-${randomBytes(4).toString('hex')}`;
    const log = (opts.log ?? createLogger({ level: config.LOG_LEVEL, name: 'relay' })).child({ nodeId });
    // Before any worker exists, so no router escapes it.
    const guard = RecordingGuard.install();
    const metrics = new Metrics(nodeId);
    const redis = createRedis(config.REDIS_URL, log, `${nodeId}-registry`);
    let pool: WorkerPool | undefined;
    let http: HttpServer | undefined;
    try {
      pool = await WorkerPool.create({
        nodeId,
        size: config.RELAY_WORKERS,
        listenIp: config.RELAY_RTC_LISTEN_IP,
        ...(config.RELAY_RTC_ANNOUNCED_IP ? { announcedIp: config.RELAY_RTC_ANNOUNCED_IP } : {}),
        portBase: config.RELAY_RTC_PORT_BASE,
        minPort: config.RELAY_PIPE_MIN_PORT,
        maxPort: config.RELAY_PIPE_MAX_PORT,
        consumersPerWorker: config.RELAY_CONSUMERS_PER_WORKER,
        log,
      });
      // The HTTP server must exist before Socket.IO attaches to it, the node after.
      const ref: { node?: RelayNode } = {};
      const httpServer = createServer((req, res) => {
        if (ref.node) ref.node.#serveHttp(req, res);
        else res.writeHead(503).end();
      });
      http = httpServer;
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(config.RELAY_PORT, config.RELAY_HOST, () => {
          httpServer.off('error', reject);
          resolve();
        });
      });
      const port = (httpServer.address() as AddressInfo).port;
      const host = config.RELAY_HOST === '0.0.0.0' || config.RELAY_HOST === '::' ? '127.0.0.1' : config.RELAY_HOST;
      const controlUrl = config.RELAY_CONTROL_URL ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      const node = new RelayNode({ config, log, nodeId, redis, pool, metrics, guard, http: httpServer, port, controlUrl });
      ref.node = node;
      await node.#wire();
      log.info({ port, workers: pool.size }, 'relay node ready');
      return node;
    } catch (err) {
      pool?.close();
      http?.close();
      await redis.quit().catch(() => undefined);
      throw err;
    }
  }

  get state(): NodeState {
    return this.#state;
  }

  /** A room on this node, if it exists (for operators and tests). */
  room(roomId: string): Room | undefined {
    return this.#rooms.get(roomId);
  }

  get roomIds(): string[] {
    return [...this.#rooms.keys()];
  }

  /** Drain (no new rooms) or serve again; publishes the new state at once. */
  async setDraining(draining: boolean): Promise<NodeState> {
    const next: NodeState = draining ? 'draining' : 'serving';
    if (next !== this.#state) {
      this.#state = next;
      this.#log.info({ state: next }, 'node state changed');
      await this.#reporter.reportNow();
    }
    return this.#state;
  }

  counts(): NodeCounts {
    const totals = { routers: 0, transports: 0, producers: 0, consumers: 0 };
    for (const w of this.pool.workers) {
      totals.routers += w.counts.routers;
      totals.transports += w.counts.transports;
      totals.producers += w.counts.producers;
      totals.consumers += w.counts.consumers;
    }
    let peers = 0;
    for (const room of this.#rooms.values()) peers += room.peerCount;
    return { rooms: this.#rooms.size, peers, ...totals };
  }

  /** Leaves the registry, tells hubs every room is going, closes rooms, control server, HTTP, workers and Redis. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#reporter.stop();
      const roomIds = [...this.#rooms.keys()];
      if (roomIds.length) {
        this.#notify('rooms.lost', { roomIds, reason: 'node_shutdown' });
        this.metrics.roomsLost(roomIds.length);
      }
      for (const room of this.#rooms.values()) room.close();
      this.#rooms.clear();
      // Give the notice a moment to leave before the sockets close.
      await new Promise((r) => setTimeout(r, roomIds.length ? 50 : 0));
      await this.#control.close();
      await new Promise<void>((resolve) => {
        this.#http.close(() => resolve());
        this.#http.closeAllConnections();
      });
      this.guard.off('refused', this.#onRefused);
      this.pool.close();
      await this.#redis.quit().catch(() => undefined);
      this.#log.info('relay node closed');
    })();
    return this.#closing;
  }

  async #wire(): Promise<void> {
    this.guard.on('refused', this.#onRefused);
    this.pool.on('died', ({ entry }) => this.#onWorkerDied(entry));
    this.#control = new ControlServer({
      httpServer: this.#http,
      secret: this.#config.RELAY_SECRET,
      handlers: this.#handlers(),
      log: this.#log.child({ sub: 'control' }),
      metrics: this.metrics,
    });
    this.#reporter = new LoadReporter({
      nodeId: this.nodeId,
      controlUrl: this.controlUrl,
      intervalMs: this.#config.LOAD_REPORT_INTERVAL_MS,
      redis: this.#redis,
      log: this.#log,
      onReport: (report) => this.metrics.observeReport(report),
      source: {
        pool: this.pool,
        state: () => this.#state,
        counts: () => {
          let peers = 0;
          for (const room of this.#rooms.values()) peers += room.peerCount;
          return { rooms: this.#rooms.size, peers };
        },
        transportsOn: (worker) => this.#transportsOn(worker),
      },
    });
    await this.#reporter.start();
  }

  #handlers(): ControlHandlers {
    return {
      'room.ensure': async ({ roomId }) => {
        const existing = this.#rooms.get(roomId);
        if (existing) return { rtpCapabilities: existing.rtpCapabilities, created: false };
        const room = await this.#createRoom(roomId);
        return { rtpCapabilities: room.rtpCapabilities, created: true };
      },
      'room.close': ({ roomId }) => {
        this.#closeRoom(roomId);
        return {};
      },
      'room.producers': ({ roomId }) => {
        const room = this.#room(roomId);
        return { producers: room.producerInfos(), activeSpeaker: room.activeSpeaker };
      },
      'peer.join': async ({ roomId, peerId, resume }) => {
        const room = this.#room(roomId);
        const { resumed } = await room.join(peerId, { resume: resume ?? false });
        return { rtpCapabilities: room.rtpCapabilities, producers: room.producerInfos(peerId), resumed, activeSpeaker: room.activeSpeaker };
      },
      'peer.leave': ({ roomId, peerId }) => {
        this.#rooms.get(roomId)?.leave(peerId);
        return {};
      },
      'transport.create': async ({ roomId, peerId, direction }) => {
        const transport = await this.#room(roomId).participant(peerId).createTransport(direction);
        return { id: transport.id, iceParameters: transport.iceParameters, iceCandidates: transport.iceCandidates, dtlsParameters: transport.dtlsParameters };
      },
      'transport.connect': async ({ roomId, peerId, transportId, dtlsParameters }) => {
        await this.#room(roomId).participant(peerId).connectTransport(transportId, dtlsParameters);
        return {};
      },
      'transport.restartIce': async ({ roomId, peerId, transportId }) => {
        const iceParameters = await this.#room(roomId).participant(peerId).restartIce(transportId);
        return { iceParameters };
      },
      produce: async ({ roomId, peerId, transportId, kind, rtpParameters, appData }) => {
        const producer = await this.#room(roomId).produce(peerId, transportId, kind, rtpParameters, appData);
        return { producerId: producer.id };
      },
      consume: async ({ roomId, peerId, transportId, producerId, rtpCapabilities }) => {
        const consumer = await this.#room(roomId).consume(peerId, transportId, producerId, rtpCapabilities);
        return {
          consumerId: consumer.id,
          producerId: consumer.producerId,
          kind: consumer.kind,
          rtpParameters: consumer.rtpParameters,
          producerPaused: consumer.producerPaused,
        };
      },
      'consumer.resume': async ({ roomId, peerId, consumerId }) => {
        await this.#room(roomId).participant(peerId).consumer(consumerId).resume();
        return {};
      },
      'consumer.pause': async ({ roomId, peerId, consumerId }) => {
        await this.#room(roomId).participant(peerId).consumer(consumerId).pause();
        return {};
      },
      'producer.pause': async ({ roomId, peerId, producerId }) => {
        await this.#room(roomId).participant(peerId).producer(producerId).pause();
        return {};
      },
      'producer.resume': async ({ roomId, peerId, producerId }) => {
        await this.#room(roomId).participant(peerId).producer(producerId).resume();
        return {};
      },
      'producer.close': ({ roomId, peerId, producerId }) => {
        this.#room(roomId).participant(peerId).producer(producerId).close();
        return {};
      },
      'node.drain': async ({ draining }) => ({ state: await this.setDraining(draining) }),
      'node.dump': async () => {
        const report = await this.#reporter.measure();
        return { nodeId: this.nodeId, state: this.#state, counts: report.counts, workers: report.workers, roomIds: this.roomIds };
      },
    };
  }

  #room(roomId: string): Room {
    const room = this.#rooms.get(roomId);
    if (!room) throw new AppError('ROOM_NOT_FOUND');
    return room;
  }

  #createRoom(roomId: string): Promise<Room> {
    let creating = this.#creating.get(roomId);
    if (creating) return creating;
    if (this.#state !== 'serving' || this.#closing) {
      return Promise.reject(new AppError('RELAY_UNAVAILABLE', 'This relay node takes no new rooms (draining)'));
    }
    if (this.pool.workers.length === 0) return Promise.reject(new AppError('RELAY_UNAVAILABLE', 'No live worker'));
    creating = Room.create({
      roomId,
      nodeId: this.nodeId,
      pool: this.pool,
      guard: this.guard,
      log: this.#log,
      maxIncomingBitrate: this.#config.RELAY_MAX_INCOMING_BITRATE,
      connectTimeoutMs: this.#config.RELAY_TRANSPORT_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: this.#config.RELAY_ROOM_IDLE_TIMEOUT_MS,
      activeSpeakerIntervalMs: this.#config.RELAY_ACTIVE_SPEAKER_INTERVAL_MS,
    }).then((room) => {
      if (this.#closing) {
        room.close();
        throw new AppError('RELAY_UNAVAILABLE', 'The relay node is shutting down');
      }
      this.#rooms.set(roomId, room);
      this.#watchRoom(room);
      this.#log.debug({ roomId }, 'room created');
      return room;
    }).finally(() => this.#creating.delete(roomId));
    this.#creating.set(roomId, creating);
    return creating;
  }

  #watchRoom(room: Room): void {
    const roomId = room.roomId;
    room.on('producerAdded', (participant, producer) => {
      this.#notify('peer.producerAdded', { roomId, ...producerInfo(participant.peerId, producer) });
    });
    room.on('producerClosed', ({ peerId, producerId, kind }) => this.#notify('peer.producerClosed', { roomId, peerId, producerId, kind }));
    room.on('producerPaused', ({ peerId, producer }) => {
      this.#notify('peer.producerPaused', { roomId, peerId, producerId: producer.id, kind: producer.kind, paused: producer.paused });
    });
    room.on('consumerClosed', ({ peerId, consumer }) => {
      this.#notify('consumer.closed', { roomId, peerId, consumerId: consumer.id, producerId: consumer.producerId, reason: 'producer_closed' });
    });
    room.on('transportClosed', ({ peerId, transportId, reason }) => this.#notify('transport.closed', { roomId, peerId, transportId, reason }));
    room.on('activeSpeaker', ({ peerId, producerId }) => this.#notify('room.activeSpeaker', { roomId, peerId, producerId }));
    room.on('idle', () => {
      this.#log.info({ roomId }, 'closing idle room');
      this.#closeRoom(roomId);
      this.#notify('room.closed', { roomId, reason: 'idle' });
    });
  }

  #closeRoom(roomId: string): void {
    const room = this.#rooms.get(roomId);
    if (!room) return;
    this.#rooms.delete(roomId);
    room.close();
  }

  #onWorkerDied(entry: PoolWorker): void {
    this.metrics.workerDied();
    const lost = [...this.#rooms.values()].filter((room) => room.workers.includes(entry)).map((room) => room.roomId);
    for (const roomId of lost) this.#closeRoom(roomId);
    if (lost.length) {
      this.metrics.roomsLost(lost.length);
      this.#notify('rooms.lost', { roomIds: lost, reason: 'worker_died' });
    }
    this.#log.error({ workerIndex: entry.index, rooms: lost.length }, 'worker died; its rooms are lost');
    void this.#reporter.reportNow();
  }

  #transportsOn(worker: PoolWorker): ms.WebRtcTransport[] {
    const out: ms.WebRtcTransport[] = [];
    for (const room of this.#rooms.values()) {
      for (const p of room.participants) if (p.worker === worker) out.push(...p.transports);
    }
    return out;
  }

  #refused(r: Refusal): void {
    if (r.nodeId !== undefined && r.nodeId !== this.nodeId) return;
    this.metrics.refusal(r.what, r.type);
    this.#log.error({ what: r.what, type: r.type, routerId: r.routerId, workerPid: r.workerPid }, 'recording guard refused a media path that could leave the call');
  }

  #notify<K extends RelayNoticeName>(name: K, payload: RelayNotice<K>): void {
    this.#control.broadcast(name, payload);
  }

  #serveHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      this.metrics.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
      }, () => res.writeHead(500).end());
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      const live = this.pool.workers.length;
      const ok = live > 0 && !this.#closing;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({
        ok, nodeId: this.nodeId, state: this.#state, workers: { live, configured: this.pool.size }, rooms: this.#rooms.size,
      }));
      return;
    }
    if (req.method === 'GET' && path === '/livez') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: new AppError('NOT_FOUND').toBody() }));
  }
}
