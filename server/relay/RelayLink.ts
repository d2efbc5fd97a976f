import { EventEmitter } from 'node:events';
import { io as connect, type Socket } from 'socket.io-client';
import type { Logger } from '../../shared/runtime/log.js';
import { AppError, isErrorCode, type ErrorBody } from '../../shared/protocol/errors.js';
import {
  RELAY_CONTROL_NAMESPACE,
  relayControlNotices,
  relayControlRequests,
  type RelayControlClientEvents,
  type RelayControlServerEvents,
  type RelayNoticeName,
  type RelayRequest,
  type RelayRequestName,
  type RelayResponse,
} from '../../shared/protocol/relayControl.js';

export interface RelayLinkOptions {
  nodeId: string;
  controlUrl: string;
  secret: string;
  hubId: string;
  /** Per-request timeout; also how long a request waits for a (re)connection. */
  timeoutMs: number;
  log: Logger;
}

interface LinkEvents {
  notice: [RelayNoticeName, unknown];
  connected: [];
  disconnected: [string];
}

type ControlSocket = Socket<RelayControlServerEvents, RelayControlClientEvents>;

const RETRY_AFTER_SERVER_DISCONNECT_MS = 500;

/**
 * The hub's end of the control channel to one relay node: a Socket.IO client
 * on `${controlUrl}/control` with the shared secret, reconnecting on its own.
 * Requests are typed by the protocol, time out (TIMEOUT), fail fast with
 * RELAY_UNAVAILABLE when the node cannot be reached, and keep the relay's
 * error codes. Notices are validated and re-emitted as 'notice'.
 */
export class RelayLink extends EventEmitter<LinkEvents> {
  readonly nodeId: string;
  readonly controlUrl: string;
  readonly #socket: ControlSocket;
  readonly #opts: RelayLinkOptions;
  #closed = false;
  #retryTimer?: NodeJS.Timeout;

  constructor(opts: RelayLinkOptions) {
    super();
    this.#opts = opts;
    this.nodeId = opts.nodeId;
    this.controlUrl = opts.controlUrl;
    const log = opts.log;
    this.#socket = connect(`${opts.controlUrl}${RELAY_CONTROL_NAMESPACE}`, {
      auth: { secret: opts.secret, hubId: opts.hubId },
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 2000,
      timeout: opts.timeoutMs,
      forceNew: true,
    });
    this.#socket.on('connect', () => {
      log.info('relay link connected');
      this.emit('connected');
    });
    this.#socket.on('disconnect', (reason) => {
      log.warn({ reason }, 'relay link disconnected');
      this.emit('disconnected', reason);
      // A relay shutting down disconnects hubs on purpose, and Socket.IO does
      // not retry those; the node may come back at the same address.
      if (reason === 'io server disconnect') this.#retryLater();
    });
    this.#socket.on('connect_error', (err: Error & { data?: ErrorBody }) => {
      // A refused secret is a configuration error, not a blip: say so once per attempt.
      if (err.data?.code === 'UNAUTHENTICATED') log.error('relay refused the control secret');
      else log.debug({ err: err.message }, 'relay link connect failed');
    });
    for (const name of Object.keys(relayControlNotices) as RelayNoticeName[]) {
      (this.#socket as unknown as Socket).on(name, (payload: unknown) => {
        const parsed = relayControlNotices[name].payload.safeParse(payload);
        if (!parsed.success) {
          log.warn({ notice: name }, 'malformed relay notice dropped');
          return;
        }
        this.emit('notice', name, parsed.data);
      });
    }
  }

  get connected(): boolean {
    return this.#socket.connected;
  }

  /** Sends a request; resolves with the validated response or throws an AppError with the relay's code. */
  async request<K extends RelayRequestName>(name: K, payload: RelayRequest<K>): Promise<RelayResponse<K>> {
    if (this.#closed) throw new AppError('RELAY_UNAVAILABLE', 'The relay link is closed');
    const started = Date.now();
    await this.#whenConnected();
    const remaining = Math.max(1, this.#opts.timeoutMs - (Date.now() - started));
    const timed = this.#socket.timeout(remaining) as unknown as {
      emit(event: string, payload: unknown, cb: (err: Error | null, res: unknown) => void): void;
    };
    const ack = await new Promise<unknown>((resolve, reject) => {
      timed.emit(name, payload, (err, res) => {
        if (err) reject(new AppError('TIMEOUT', `The relay did not answer ${name} in time`));
        else resolve(res);
      });
    });
    return this.#parseAck(name, ack);
  }

  /** Closes the connection and stops reconnecting. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#socket.removeAllListeners();
    this.#socket.close();
    this.removeAllListeners();
  }

  #retryLater(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (!this.#closed && !this.#socket.connected) this.#socket.connect();
    }, RETRY_AFTER_SERVER_DISCONNECT_MS);
  }

  #whenConnected(): Promise<void> {
    if (this.#socket.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#socket.off('connect', onConnect);
        reject(new AppError('RELAY_UNAVAILABLE', 'The relay node cannot be reached'));
      }, this.#opts.timeoutMs);
      this.#socket.once('connect', onConnect);
    });
  }

  #parseAck<K extends RelayRequestName>(name: K, ack: unknown): RelayResponse<K> {
    const res = ack as { ok?: unknown; error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
    if (res?.ok === true) {
      const parsed = relayControlRequests[name].response.safeParse(res);
      if (parsed.success) return parsed.data as RelayResponse<K>;
      this.#opts.log.error({ request: name }, 'relay response does not match the protocol');
      throw new AppError('RELAY_ERROR', 'The relay answered with an unexpected response');
    }
    const code = res?.error?.code;
    const message = typeof res?.error?.message === 'string' ? res.error.message : undefined;
    if (isErrorCode(code)) throw new AppError(code, message, res?.error?.details === undefined ? {} : { details: res.error.details });
    throw new AppError('RELAY_ERROR', message);
  }
}
