import type { Server, Socket } from 'socket.io';
import type { z } from 'zod';
import { AppError, type ErrorBody } from '../../shared/protocol/errors.js';
import {
  clientRequests,
  type ClientRequestName,
  type ClientRequests,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '../../shared/protocol/events.js';
import type { SessionCloseReason } from '../../shared/protocol/session.js';
import type { Logger } from '../../shared/runtime/log.js';
import type { Tokens } from '../identity/Tokens.js';

export interface SocketData {
  userId: string;
  sessionId: string;
  deviceId: string;
  /** Access token expiry, epoch ms. */
  tokenExpiresAt: number;
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface InterServerEvents {}

export type HubServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type HubSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

export type RequestHandler<K extends ClientRequestName> = (
  socket: HubSocket,
  payload: z.output<ClientRequests[K]['request']>,
) => Promise<z.input<ClientRequests[K]['response']>> | z.input<ClientRequests[K]['response']>;

type AnyHandler = (socket: HubSocket, payload: unknown) => unknown;

export interface GatewayOptions {
  tokens: Tokens;
  log: Logger;
  eventsPer10s: number;
  /** Session check at the handshake (revoked sessions and deleted accounts are refused). */
  isSessionActive: (userId: string, sessionId: string) => Promise<boolean>;
}

/** Rooms every authenticated socket joins, so any hub can reach it through the adapter. */
export const rooms = {
  user: (userId: string) => `user:${userId}`,
  device: (deviceId: string) => `device:${deviceId}`,
  session: (sessionId: string) => `session:${sessionId}`,
};

/**
 * The socket boundary: authenticates the handshake, validates every incoming
 * event against its schema before a handler runs, converts errors to
 * `{ ok: false, error }` acks in one place, disconnects flooders, and closes
 * sockets whose token expires.
 */
export class SocketGateway {
  readonly #io: HubServer;
  readonly #opts: GatewayOptions;
  readonly #handlers = new Map<string, AnyHandler>();
  readonly #connectListeners: ((socket: HubSocket) => void)[] = [];
  readonly #disconnectListeners: ((socket: HubSocket, reason: string) => void)[] = [];

  constructor(io: HubServer, opts: GatewayOptions) {
    this.#io = io;
    this.#opts = opts;
    io.use((socket, next) => {
      this.#authenticate(socket).then(() => next(), (err: unknown) => {
        const body = toErrorBody(err, opts.log);
        const e = new Error(body.message) as Error & { data: ErrorBody };
        e.data = body;
        next(e);
      });
    });
    io.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Registers the handler of a client request; one per event name. */
  handle<K extends ClientRequestName>(event: K, handler: RequestHandler<K>): void {
    if (this.#handlers.has(event)) throw new TypeError(`handler for ${event} already registered`);
    this.#handlers.set(event, handler as AnyHandler);
  }

  onConnect(listener: (socket: HubSocket) => void): void {
    this.#connectListeners.push(listener);
  }

  onDisconnect(listener: (socket: HubSocket, reason: string) => void): void {
    this.#disconnectListeners.push(listener);
  }

  /** Tells every socket in a room why it is being closed, then closes it (on any hub). */
  closeRoom(room: string, reason: SessionCloseReason, message: string): void {
    this.#io.to(room).emit('session:closing', { reason, message });
    this.#io.in(room).disconnectSockets(true);
  }

  async #authenticate(socket: HubSocket): Promise<void> {
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    const claims = this.#opts.tokens.verify(auth?.token);
    if (!(await this.#opts.isSessionActive(claims.sub, claims.sid))) throw new AppError('SESSION_REVOKED');
    socket.data = {
      userId: claims.sub,
      sessionId: claims.sid,
      deviceId: claims.did,
      tokenExpiresAt: claims.exp * 1000,
    };
  }

  #onConnection(socket: HubSocket): void {
    const { userId, deviceId, sessionId } = socket.data;
    const log = this.#opts.log.child({ socketId: socket.id, userId, deviceId });
    void socket.join([rooms.user(userId), rooms.device(deviceId), rooms.session(sessionId)]);
    log.debug('socket connected');

    let expiryTimer: NodeJS.Timeout | undefined;
    const armExpiry = () => {
      clearTimeout(expiryTimer);
      const delay = Math.max(0, socket.data.tokenExpiresAt - Date.now());
      // setTimeout caps at 2^31-1 ms; tokens live far shorter than that.
      expiryTimer = setTimeout(() => {
        socket.emit('session:closing', { reason: 'token_expired', message: 'The access token expired; refresh it and reconnect' });
        socket.disconnect(true);
      }, Math.min(delay, 2 ** 31 - 1));
    };
    armExpiry();

    // Flood control: a fixed 10 s window per socket. It runs in the onAny
    // listener, which Socket.IO calls before any middleware or handler, so
    // events past the limit (even thousands batched in one long-polling
    // POST) never reach a handler.
    let windowStart = Date.now();
    let count = 0;
    const admit = (): boolean => {
      if (!socket.connected) return false;
      const now = Date.now();
      if (now - windowStart >= 10_000) {
        windowStart = now;
        count = 0;
      }
      if (++count <= this.#opts.eventsPer10s) return true;
      log.warn('socket flooding; disconnecting');
      socket.emit('session:closing', { reason: 'rate_limited', message: 'Too many events' });
      socket.disconnect(true);
      return false;
    };

    socket.onAny((event: unknown, ...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (r: unknown) => void) : undefined;
      if (!admit()) return;
      // Socket.IO's parser also accepts numeric event names.
      const name = typeof event === 'string' ? event : undefined;
      if (name === 'session:refresh') {
        this.#refresh(socket, args[0], ack, armExpiry, log);
        return;
      }
      const handler = name === undefined ? undefined : this.#handlers.get(name);
      if (name === undefined || !handler || !Object.prototype.hasOwnProperty.call(clientRequests, name)) {
        ack?.({ ok: false, error: new AppError('UNKNOWN_EVENT', name === undefined ? undefined : `Unknown event "${name.slice(0, 64)}"`).toBody() });
        return;
      }
      void this.#dispatch(socket, name as ClientRequestName, handler, args[0], ack, log);
    });

    socket.on('disconnect', (reason) => {
      clearTimeout(expiryTimer);
      log.debug({ reason }, 'socket disconnected');
      for (const l of this.#disconnectListeners) {
        try {
          l(socket, reason);
        } catch (err) {
          log.error({ err }, 'disconnect listener failed');
        }
      }
    });

    for (const l of this.#connectListeners) {
      try {
        l(socket);
      } catch (err) {
        log.error({ err }, 'connect listener failed');
      }
    }
  }

  /** `session:refresh`: a fresh access token extends a live socket's life. */
  #refresh(socket: HubSocket, payload: unknown, ack: ((r: unknown) => void) | undefined, armExpiry: () => void, log: Logger): void {
    const reply = ack ?? (() => undefined);
    const parsed = clientRequests['session:refresh'].request.safeParse(payload);
    if (!parsed.success) {
      reply({ ok: false, error: validationError(parsed.error).toBody() });
      return;
    }
    try {
      const claims = this.#opts.tokens.verify(parsed.data.accessToken);
      if (claims.sub !== socket.data.userId || claims.sid !== socket.data.sessionId) throw new AppError('FORBIDDEN', 'The token belongs to another session');
      socket.data.tokenExpiresAt = claims.exp * 1000;
      armExpiry();
      reply({ ok: true, expiresAt: socket.data.tokenExpiresAt });
    } catch (err) {
      reply({ ok: false, error: toErrorBody(err, log) });
    }
  }

  async #dispatch(
    socket: HubSocket,
    event: ClientRequestName,
    handler: AnyHandler,
    payload: unknown,
    ack: ((r: unknown) => void) | undefined,
    log: Logger,
  ): Promise<void> {
    const spec = clientRequests[event];
    const parsed = spec.request.safeParse(payload ?? {});
    if (!parsed.success) {
      ack?.({ ok: false, error: validationError(parsed.error).toBody() });
      return;
    }
    try {
      const result = (await handler(socket, parsed.data)) as Record<string, unknown> | undefined;
      ack?.({ ...(result ?? {}), ok: true });
    } catch (err) {
      const body = toErrorBody(err, log, event);
      ack?.({ ok: false, error: body });
    }
  }
}

export function validationError(error: z.ZodError): AppError {
  const issue = error.issues[0];
  const path = issue?.path.join('.') ?? '';
  // An oversized SDP has its own code so clients can tell it from other garbage.
  if (issue?.code === 'too_big' && /(^|\.)sdp$/.test(path)) return new AppError('SDP_TOO_LARGE');
  return new AppError('VALIDATION_FAILED', `${path || 'payload'}: ${issue?.message ?? 'invalid'}`, {
    details: error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

/** The single conversion from any thrown value to a wire error; unknown errors are logged, never leaked. */
export function toErrorBody(err: unknown, log: Logger, event?: string): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  log.error({ err, event }, 'request failed');
  return new AppError('INTERNAL').toBody();
}
