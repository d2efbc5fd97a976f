import { io, type Socket } from 'socket.io-client';
import type { z } from 'zod';
import type { AckResponse } from '../protocol/define.js';
import type { ErrorBody } from '../protocol/errors.js';
import type {
  ClientRequestName,
  ClientRequests,
  ClientToServerEvents,
  ServerNoticeName,
  ServerToClientEvents,
} from '../protocol/events.js';
import type { SessionCloseReason } from '../protocol/session.js';
import { ClientError } from './ClientError.js';
import { Emitter } from './Emitter.js';

export type RequestPayload<K extends ClientRequestName> = z.input<ClientRequests[K]['request']>;
export type RequestResult<K extends ClientRequestName> = z.output<ClientRequests[K]['response']>;
export type NoticePayload<K extends ServerNoticeName> = Parameters<ServerToClientEvents[K]>[0];

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface ConnectionEvents {
  state: (state: ConnectionState) => void;
  /** The socket (re)connected; `recovered` when Socket.IO restored the previous session's missed packets. */
  connected: (info: { recovered: boolean }) => void;
  /** The hub refused the token (expired or invalid): refresh and the connection retries by itself. */
  authFailed: (error: ClientError) => void;
  /** The hub closed the session for good (revoked, account deleted): sign in again. */
  sessionEnded: (reason: SessionCloseReason | 'SESSION_REVOKED' | 'ACCOUNT_DELETED', message: string) => void;
}

export interface ConnectionOptions {
  url: string;
  /** Read on every (re)connect so a refreshed token is used. */
  token: () => string | undefined;
  requestTimeoutMs: number;
  /** Socket.IO path, when the hub sits under a prefix. */
  path?: string;
}

const FATAL_CODES = new Set(['SESSION_REVOKED', 'ACCOUNT_DELETED']);
const AUTH_CODES = new Set(['TOKEN_EXPIRED', 'TOKEN_INVALID', 'UNAUTHENTICATED']);

/**
 * The one Socket.IO connection of a signed-in device. Reconnects on its own
 * (with backoff) after network loss and after the hub restarts or closes the
 * socket for an expired token; stops for good when the session ends. Typed
 * requests and notices come from the shared protocol maps.
 */
export class Connection extends Emitter<ConnectionEvents> {
  readonly #socket: ClientSocket;
  readonly #opts: ConnectionOptions;
  #state: ConnectionState = 'idle';
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retries = 0;

  constructor(opts: ConnectionOptions) {
    super();
    this.#opts = opts;
    this.#socket = io(opts.url, {
      autoConnect: false,
      transports: ['websocket'],
      path: opts.path ?? '/socket.io',
      auth: (cb) => cb({ token: opts.token() }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    const sock = this.#socket;
    sock.on('connect', () => {
      this.#retries = 0;
      this.#setState('connected');
      this.emit('connected', { recovered: sock.recovered });
    });
    sock.on('connect_error', (err: Error & { data?: Partial<ErrorBody> }) => {
      if (this.#closed) return;
      const error = ClientError.fromBody(err.data ?? { code: 'UNAVAILABLE' as const, message: err.message });
      if (err.data && FATAL_CODES.has(error.code)) {
        this.emit('sessionEnded', error.code as 'SESSION_REVOKED', error.message);
        this.close();
        return;
      }
      // A refused handshake is not retried by Socket.IO itself (only transport errors are).
      if (err.data && AUTH_CODES.has(error.code)) this.emit('authFailed', error);
      if (!sock.active) this.#retryLater();
      this.#setState('reconnecting');
    });
    sock.on('disconnect', (reason) => {
      if (this.#closed) return;
      this.#setState('reconnecting');
      // The hub closed us on purpose (token expiry, restart, flood): Socket.IO will not retry on its own.
      if (reason === 'io server disconnect') this.#retryLater();
    });
    sock.on('session:closing', ({ reason, message }) => {
      if (reason === 'session_revoked' || reason === 'account_deleted') {
        this.emit('sessionEnded', reason, message);
        this.close();
      } else if (reason === 'token_expired') {
        this.emit('authFailed', new ClientError('TOKEN_EXPIRED', message));
      }
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get connected(): boolean {
    return this.#socket.connected;
  }

  /** The underlying socket id (for logs; changes on every reconnect). */
  get id(): string | undefined {
    return this.#socket.id;
  }

  /** Opens the connection and resolves once connected (or rejects when the session has ended or `timeoutMs` passed). */
  open(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return Promise.reject(new ClientError('CLOSED', 'The connection is closed'));
    if (this.#socket.connected) return Promise.resolve();
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new ClientError('TIMEOUT', 'Could not connect to the hub in time')); }, timeoutMs);
      const offConnected = this.on('connected', () => { cleanup(); resolve(); });
      const offEnded = this.on('sessionEnded', (_r, message) => { cleanup(); reject(new ClientError('SIGNED_OUT', message)); });
      function cleanup() {
        clearTimeout(timer);
        offConnected();
        offEnded();
      }
    });
    this.#setState('connecting');
    this.#socket.connect();
    return ready;
  }

  /**
   * Sends a request and resolves with its acknowledgement (without `ok`), or
   * rejects with a `ClientError` carrying the server's code. Requests made
   * while reconnecting are buffered by Socket.IO and sent once connected.
   */
  async request<K extends ClientRequestName>(event: K, payload: RequestPayload<K>, timeoutMs = this.#opts.requestTimeoutMs): Promise<RequestResult<K>> {
    if (this.#closed) throw new ClientError('CLOSED', 'The connection is closed');
    let ack: AckResponse<RequestResult<K>>;
    try {
      const emitter = this.#socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckResponse<RequestResult<K>>> };
      ack = await emitter.emitWithAck(event, payload);
    } catch (err) {
      throw new ClientError('TIMEOUT', `${event}: no answer within ${timeoutMs} ms`, { cause: err });
    }
    if (!ack || typeof ack !== 'object') throw new ClientError('INTERNAL', `${event}: malformed acknowledgement`);
    if (ack.ok !== true) throw ClientError.fromBody((ack as { error?: ErrorBody }).error);
    const { ok: _ok, ...rest } = ack as { ok: true } & Record<string, unknown>;
    return rest as RequestResult<K>;
  }

  /** Listens to a server notice; returns the unsubscribe function. */
  onNotice<K extends ServerNoticeName>(event: K, listener: (payload: NoticePayload<K>) => void): () => void {
    const sock = this.#socket as unknown as { on(e: string, l: (p: unknown) => void): void; off(e: string, l: (p: unknown) => void): void };
    const wrapped = (p: unknown) => listener(p as NoticePayload<K>);
    sock.on(event, wrapped);
    return () => sock.off(event, wrapped);
  }

  /** Drops the transport and reconnects at once (e.g. after a token refresh the hub refused). */
  reconnectNow(): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (!this.#socket.connected) this.#socket.connect();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#socket.removeAllListeners();
    this.#socket.disconnect();
    this.#setState('closed');
    this.removeAllListeners();
  }

  #retryLater(): void {
    if (this.#retryTimer || this.#closed) return;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.#retries++, 5)) * (0.75 + Math.random() * 0.5);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed && !this.#socket.connected) this.#socket.connect();
    }, delay);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.emit('state', state);
  }
}
