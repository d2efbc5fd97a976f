import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { Server, type Namespace } from 'socket.io';
import type { z } from 'zod';
import type { Logger } from 'pino';
import { AppError, type ErrorBody } from '../shared/protocol/errors.js';
import {
  RELAY_CONTROL_NAMESPACE,
  isRelayRequestName,
  relayControlRequests,
  type RelayControlClientEvents,
  type RelayControlRequests,
  type RelayControlServerEvents,
  type RelayNotice,
  type RelayNoticeName,
  type RelayRequestName,
} from '../shared/protocol/relayControl.js';
import type { Metrics } from './Metrics.js';

export type ControlHandlers = {
  [K in RelayRequestName]: (
    payload: z.output<RelayControlRequests[K]['request']>,
  ) => Promise<z.input<RelayControlRequests[K]['response']>> | z.input<RelayControlRequests[K]['response']>;
};

export interface ControlServerOptions {
  httpServer: HttpServer;
  secret: string;
  handlers: ControlHandlers;
  log: Logger;
  metrics: Metrics;
  /** Largest accepted control message in bytes. */
  maxPayload?: number;
}

interface ControlSocketData {
  hubId: string;
}

type ControlNamespace = Namespace<RelayControlClientEvents, RelayControlServerEvents, Record<string, never>, ControlSocketData>;

/**
 * The relay's end of the hub-to-relay control channel: Socket.IO namespace
 * `/control` on the node's HTTP port. A hub authenticates with the shared
 * secret in the handshake (`auth: { secret, hubId }`, compared in constant
 * time); the main namespace refuses everyone. Every request is validated with
 * its zod schema before its handler runs, and answered through the ack with
 * `{ ok: true, ...response }` or `{ ok: false, error }` from one error
 * boundary. Notices go to every connected hub.
 */
export class ControlServer {
  readonly #io: Server;
  readonly #nsp: ControlNamespace;
  readonly #opts: ControlServerOptions;
  readonly #secretDigest: Buffer;
  #closing?: Promise<void>;

  constructor(opts: ControlServerOptions) {
    this.#opts = opts;
    this.#secretDigest = digest(opts.secret);
    this.#io = new Server(opts.httpServer, {
      maxHttpBufferSize: opts.maxPayload ?? 256 * 1024,
      pingInterval: 5000,
      pingTimeout: 5000,
      serveClient: false,
    });
    this.#io.use((_socket, next) => next(authError(new AppError('FORBIDDEN', 'Use the control namespace'))));
    this.#nsp = this.#io.of(RELAY_CONTROL_NAMESPACE) as unknown as ControlNamespace;
    this.#nsp.use((socket, next) => {
      const auth = socket.handshake.auth as { secret?: unknown; hubId?: unknown } | undefined;
      if (!this.#secretMatches(auth?.secret)) {
        opts.metrics.authFailure();
        opts.log.warn('control connection refused: wrong secret');
        next(authError(new AppError('UNAUTHENTICATED', 'Wrong relay secret')));
        return;
      }
      socket.data.hubId = typeof auth?.hubId === 'string' ? auth.hubId.slice(0, 64) : 'unknown';
      next();
    });
    this.#nsp.on('connection', (socket) => {
      const log = opts.log.child({ hubId: socket.data.hubId });
      log.info('hub connected');
      opts.metrics.hubConnections(this.#nsp.sockets.size);
      socket.on('disconnect', (reason) => {
        log.info({ reason }, 'hub disconnected');
        opts.metrics.hubConnections(this.#nsp.sockets.size);
      });
      socket.onAny((event: unknown, ...args: unknown[]) => {
        const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (r: unknown) => void) : () => undefined;
        // Socket.IO's parser accepts numeric event names too.
        if (typeof event !== 'string') {
          ack({ ok: false, error: new AppError('UNKNOWN_EVENT').toBody() });
          return;
        }
        this.#dispatch(event, args[0], ack, log).catch((err: unknown) => log.error({ err, event }, 'control request failed'));
      });
    });
  }

  /** Hubs connected right now. */
  get connections(): number {
    return this.#nsp.sockets.size;
  }

  /** Sends a notice to every connected hub. */
  broadcast<K extends RelayNoticeName>(name: K, payload: RelayNotice<K>): void {
    (this.#nsp.emit as (event: string, payload: unknown) => boolean)(name, payload);
  }

  /** Disconnects every hub and stops accepting connections (the HTTP server is closed by its owner). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#nsp.disconnectSockets(true);
      this.#io.disconnectSockets(true);
      // io.close() would also close the HTTP server, which RelayNode owns.
      this.#io.engine.close();
      resolve();
    });
    return this.#closing;
  }

  async #dispatch(event: string, payload: unknown, ack: (r: unknown) => void, log: Logger): Promise<void> {
    if (!isRelayRequestName(event)) {
      this.#opts.metrics.request('unknown', 'UNKNOWN_EVENT');
      ack({ ok: false, error: new AppError('UNKNOWN_EVENT', `Unknown request "${event.slice(0, 64)}"`).toBody() });
      return;
    }
    const parsed = relayControlRequests[event].request.safeParse(payload ?? {});
    if (!parsed.success) {
      this.#opts.metrics.request(event, 'VALIDATION_FAILED');
      const issue = parsed.error.issues[0];
      ack({
        ok: false,
        error: new AppError('VALIDATION_FAILED', `${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'}`, {
          details: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })),
        }).toBody(),
      });
      return;
    }
    try {
      const handler = this.#opts.handlers[event] as (p: unknown) => unknown;
      const result = (await handler(parsed.data)) as Record<string, unknown> | undefined;
      this.#opts.metrics.request(event, 'ok');
      ack({ ...(result ?? {}), ok: true });
    } catch (err) {
      const body = toErrorBody(err, log, event);
      this.#opts.metrics.request(event, body.code);
      ack({ ok: false, error: body });
    }
  }

  #secretMatches(candidate: unknown): boolean {
    if (typeof candidate !== 'string') return false;
    // Digests have equal length, so the comparison time does not depend on the guess.
    return timingSafeEqual(digest(candidate), this.#secretDigest);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function authError(err: AppError): Error {
  const e = new Error(err.message) as Error & { data: ErrorBody };
  e.data = err.toBody();
  return e;
}

function toErrorBody(err: unknown, log: Logger, event: string): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  log.error({ err, event }, 'control request failed');
  return new AppError('INTERNAL').toBody();
}
