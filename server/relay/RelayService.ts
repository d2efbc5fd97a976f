import { EventEmitter } from 'node:events';
import type { Logger } from '../../shared/runtime/log.js';
import { AppError } from '../../shared/protocol/errors.js';
import type {
  NodeState,
  RelayNodeReport,
  RelayNotice,
  RelayNoticeName,
  RelayRequest,
  RelayRequestName,
  RelayResponse,
} from '../../shared/protocol/relayControl.js';
import type { RelayDirectory } from './RelayDirectory.js';
import { RelayLink } from './RelayLink.js';

/** Requests about one room: everything but the node-level ones. */
export type RoomRequestName = Exclude<RelayRequestName, 'node.drain' | 'node.dump'>;
/** A room request's payload without the roomId (RelayService adds it). */
export type RoomRequestPayload<K extends RoomRequestName> = Omit<RelayRequest<K>, 'roomId'>;

/** Notices from every relay node, with the id of the node that sent them. */
export type RelayServiceEvents = { [K in RelayNoticeName]: [RelayNotice<K>, string] };

export interface OpenedRoom {
  nodeId: string;
  /** The room router's RTP capabilities. */
  rtpCapabilities: Record<string, unknown>;
  /** Whether this call created the room on the node (false: it was there). */
  created: boolean;
}

export interface RelayServiceOptions {
  directory: RelayDirectory;
  log: Logger;
  hubId: string;
  secret: string;
  requestTimeoutMs: number;
  /** How often the registry is read and links to new nodes opened. */
  refreshMs: number;
}

/** A link to a node that left the registry stays this long (it may be restarting) before it is closed. */
const LINK_LINGER_MS = 30_000;
const OPEN_ATTEMPTS = 3;

/**
 * What the hub uses to put media on relays: `openRoom` places a room on a
 * node chosen by load (or finds the node it already lives on), `request`
 * sends a control request for a room to its node, `closeRoom` ends it.
 * Keeps a control link to every live node (so notices from all of them
 * arrive) and re-emits each notice as an event named after it, with the
 * sending node's id: `relay.on('rooms.lost', ({ roomIds }, nodeId) => ...)`.
 *
 * Every hub receives every notice of every node. Handlers deliver to their
 * own sockets only (`ctx.io.local`), or must be idempotent across hubs.
 */
export class RelayService extends EventEmitter<RelayServiceEvents> {
  readonly directory: RelayDirectory;
  readonly #opts: RelayServiceOptions;
  readonly #links = new Map<string, RelayLink>();
  readonly #missingSince = new Map<string, number>();
  #timer?: NodeJS.Timeout;
  #refreshing?: Promise<void>;
  #closed = false;

  constructor(opts: RelayServiceOptions) {
    super();
    this.setMaxListeners(50);
    this.directory = opts.directory;
    this.#opts = opts;
  }

  /** Starts the registry refresh loop (the first refresh runs now). */
  start(): void {
    if (this.#timer || this.#closed) return;
    const tick = () => {
      void this.refresh().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, this.#opts.refreshMs);
      });
    };
    tick();
  }

  /** Reads the registry: opens links to new nodes, replaces links whose node moved, closes links to nodes long gone. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }

  /** Live nodes as last reported (any state). */
  nodes(): Promise<RelayNodeReport[]> {
    return this.directory.nodes();
  }

  /**
   * Opens a room: on the node it is mapped to if that node is live and
   * takes it, else on a node chosen by load (the mapping moves there, once,
   * for every hub). RELAY_UNAVAILABLE when no node can take it.
   */
  async openRoom(roomId: string): Promise<OpenedRoom> {
    const { directory } = this;
    const refused = new Set<string>();
    let lastError: unknown;
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const mapped = await directory.roomNode(roomId);
      let nodeId = mapped;
      if (nodeId !== null && (refused.has(nodeId) || !(await directory.node(nodeId)))) nodeId = null;
      if (nodeId === null) {
        const chosen = await directory.choose(refused);
        nodeId = await directory.assign(roomId, mapped, chosen.nodeId);
      }
      try {
        const res = await (await this.#link(nodeId)).request('room.ensure', { roomId });
        await directory.touch(roomId);
        if (res.created) this.#opts.log.info({ roomId, nodeId }, 'relay room opened');
        return { nodeId, rtpCapabilities: res.rtpCapabilities, created: res.created };
      } catch (err) {
        // Draining, shutting down or unreachable: try another node.
        if (err instanceof AppError && err.code === 'RELAY_UNAVAILABLE') {
          refused.add(nodeId);
          lastError = err;
          continue;
        }
        throw err;
      }
    }
    throw lastError instanceof AppError ? lastError : new AppError('RELAY_UNAVAILABLE');
  }

  /** Sends a request about a room to the node it lives on (ROOM_NOT_FOUND if it was never opened or was closed). */
  async request<K extends RoomRequestName>(roomId: string, name: K, payload: RoomRequestPayload<K>): Promise<RelayResponse<K>> {
    const nodeId = await this.directory.roomNode(roomId);
    if (nodeId === null) throw new AppError('ROOM_NOT_FOUND');
    const link = await this.#link(nodeId);
    return link.request(name, { ...payload, roomId } as RelayRequest<K>);
  }

  /** The node a room is mapped to, if any. */
  nodeOf(roomId: string): Promise<string | null> {
    return this.directory.roomNode(roomId);
  }

  /** Closes a room on its node and unmaps it. Idempotent; a node that cannot be reached is logged, not thrown. */
  async closeRoom(roomId: string): Promise<void> {
    const nodeId = await this.directory.roomNode(roomId);
    if (nodeId === null) return;
    try {
      await (await this.#link(nodeId)).request('room.close', { roomId });
    } catch (err) {
      this.#opts.log.warn({ roomId, nodeId, err: err instanceof Error ? err.message : String(err) }, 'relay room close failed; the node closes idle rooms itself');
    }
    await this.directory.forget(roomId, nodeId);
  }

  /** Drains a node (no new rooms) or makes it serve again. */
  async drain(nodeId: string, draining: boolean): Promise<NodeState> {
    const res = await (await this.#link(nodeId)).request('node.drain', { draining });
    return res.state;
  }

  /** Object counts of a node, per worker. */
  async dump(nodeId: string): Promise<RelayResponse<'node.dump'>> {
    return (await this.#link(nodeId)).request('node.dump', {});
  }

  /** Node ids with a connected control link right now. */
  get connectedNodes(): string[] {
    return [...this.#links.values()].filter((l) => l.connected).map((l) => l.nodeId);
  }

  /** Stops refreshing and closes every link. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#refreshing?.catch(() => undefined);
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.removeAllListeners();
  }

  async #refresh(): Promise<void> {
    if (this.#closed) return;
    let nodes: RelayNodeReport[];
    try {
      nodes = await this.directory.nodes();
    } catch (err) {
      this.#opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'relay registry unreadable');
      return;
    }
    if (this.#closed) return;
    const now = Date.now();
    const live = new Set<string>();
    for (const node of nodes) {
      live.add(node.nodeId);
      this.#missingSince.delete(node.nodeId);
      this.#ensureLink(node);
    }
    for (const [nodeId, link] of this.#links) {
      if (live.has(nodeId)) continue;
      const since = this.#missingSince.get(nodeId) ?? now;
      this.#missingSince.set(nodeId, since);
      if (now - since >= LINK_LINGER_MS) {
        link.close();
        this.#links.delete(nodeId);
        this.#missingSince.delete(nodeId);
      }
    }
  }

  async #link(nodeId: string): Promise<RelayLink> {
    if (this.#closed) throw new AppError('RELAY_UNAVAILABLE', 'The hub is shutting down');
    const existing = this.#links.get(nodeId);
    if (existing) return existing;
    const node = await this.directory.node(nodeId);
    if (!node) throw new AppError('RELAY_UNAVAILABLE', 'The relay node is gone');
    return this.#ensureLink(node);
  }

  #ensureLink(node: RelayNodeReport): RelayLink {
    const existing = this.#links.get(node.nodeId);
    if (existing && existing.controlUrl === node.controlUrl) return existing;
    // A node that restarted on another address: reconnect there.
    existing?.close();
    const { nodeId } = node;
    const link = new RelayLink({
      nodeId,
      controlUrl: node.controlUrl,
      secret: this.#opts.secret,
      hubId: this.#opts.hubId,
      timeoutMs: this.#opts.requestTimeoutMs,
      log: this.#opts.log.child({ relayNode: nodeId }),
    });
    link.on('notice', (name, payload) => {
      try {
        (this.emit as (event: string, ...args: unknown[]) => boolean)(name, payload, nodeId);
      } catch (err) {
        this.#opts.log.error({ err, notice: name }, 'relay notice handler failed');
      }
    });
    this.#links.set(nodeId, link);
    return link;
  }
}
