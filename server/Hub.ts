import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { HubConfig } from './config.js';
import { createLogger, type Logger } from '../shared/runtime/log.js';
import { createRedis } from '../shared/runtime/redis.js';
import type { HealthCheck, HubContext } from './HubContext.js';
import { SocketGateway, type HubServer } from './socket/SocketGateway.js';
import { Tokens } from './identity/Tokens.js';
import { Sessions } from './identity/Sessions.js';
import { Accounts } from './identity/Accounts.js';
import { PhoneHasher } from './identity/PhoneHasher.js';
import { HubEvents } from './HubEvents.js';
import { installErrorHandler } from './http/errors.js';
import { registerHealthRoutes } from './http/health.js';
import { registerIdentity } from './identity/register.js';
import { registerMetricsRoutes } from './http/metrics.js';
import { registerAdminRoutes } from './http/admin.js';
import { HubMetrics } from './metrics/HubMetrics.js';
import { registerWeb } from './http/web.js';
import { registerCdr } from './cdr/registerCdr.js';
import { registerCalls } from './calls/registerCalls.js';
import { registerRelay } from './relay/registerRelay.js';
import { registerConference } from './conference/registerConference.js';

export interface HubStartOptions {
  /** Use this logger instead of creating one (tests pass a silent one). */
  log?: Logger;
}

/**
 * The signaling hub: HTTP API + Socket.IO on one port, Redis for state and the
 * adapter. `Hub.start()` wires subsystems; `close()` drains and is idempotent.
 */
export class Hub {
  readonly ctx: HubContext;
  readonly url: string;
  readonly port: number;
  readonly #closers: (() => Promise<void> | void)[];
  #closing?: Promise<void>;

  private constructor(ctx: HubContext, closers: (() => Promise<void> | void)[], port: number, host: string) {
    this.ctx = ctx;
    this.#closers = closers;
    this.port = port;
    this.url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
  }

  static async start(config: HubConfig, opts: HubStartOptions = {}): Promise<Hub> {
    const hubId = config.HUB_ID ?? `hub-${randomBytes(4).toString('hex')}`;
    const log = (opts.log ?? createLogger({ level: config.LOG_LEVEL, name: 'hub' })).child({ hubId });
    const closers: (() => Promise<void> | void)[] = [];

    const redis = createRedis(config.REDIS_URL, log, `${hubId}-cmd`);
    const pub = createRedis(config.REDIS_URL, log, `${hubId}-pub`);
    const sub = createRedis(config.REDIS_URL, log, `${hubId}-sub`);
    closers.push(async () => {
      await Promise.allSettled([redis.quit(), pub.quit(), sub.quit()]);
    });

    const httpOptions: FastifyServerOptions = {
      logger: false,
      bodyLimit: config.HTTP_BODY_LIMIT,
      // A hop count trusts that many proxies in front of the hub (proxy-addr semantics).
      trustProxy: typeof config.TRUST_PROXY === 'number'
        ? ((hops: number) => (_addr: string, i: number) => i < hops)(config.TRUST_PROXY)
        : config.TRUST_PROXY,
      forceCloseConnections: true,
    };
    const app = Fastify(httpOptions);
    installErrorHandler(app, log.child({ sub: 'http' }));

    const io: HubServer = new Server(app.server, {
      maxHttpBufferSize: config.SOCKET_MAX_PAYLOAD,
      pingInterval: 10_000,
      pingTimeout: 10_000,
      cors: { origin: true },
      adapter: createAdapter(pub, sub, { key: 'sio' }),
    });

    const tokens = new Tokens({
      keys: config.JWT_KEYS,
      signingKid: config.JWT_SIGNING_KID,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      ttlSeconds: config.ACCESS_TOKEN_TTL_S,
    });
    const phoneHasher = new PhoneHasher(config.IDENTITY_HMAC_KEYS);
    const sessions = new Sessions(redis, { tokenKey: phoneHasher.deriveKey('refresh-token/v2') });
    const gateway = new SocketGateway(io, {
      tokens,
      log: log.child({ sub: 'socket' }),
      eventsPer10s: config.SOCKET_EVENTS_PER_10S,
      isSessionActive: (uid, sid) => sessions.isActive(uid, sid),
    });

    const healthChecks = new Map<string, HealthCheck>();
    const accounts = new Accounts(redis, phoneHasher);
    const events = new HubEvents();
    const ctx: HubContext = {
      hubId, config, log, redis, app, io, gateway, tokens, sessions, accounts, phoneHasher, events, healthChecks,
      onClose: (fn) => { closers.push(fn); },
    };

    // Subsystems, in dependency order. Each registers its routes, socket
    // handlers and closers on the context.
    gateway.handle('session:ping', () => ({ serverTime: Date.now() }));
    registerHealthRoutes(ctx);
    registerIdentity(ctx);
    await registerCdr(ctx); // before calls/conference: closes after them, so calls ended at shutdown are recorded
    registerRelay(ctx); // before calls/conference: they use ctx.relay, and it closes after them
    registerCalls(ctx);
    registerConference(ctx); // after calls: installs the relay fallback on ctx.calls
    if (config.METRICS_ENABLED) {
      const metrics = new HubMetrics(hubId);
      metrics.attach(ctx);
      registerMetricsRoutes(ctx, metrics);
    }
    registerAdminRoutes(ctx);
    registerWeb(ctx);

    await app.listen({ host: config.HUB_HOST, port: config.HUB_PORT });
    const port = (app.server.address() as AddressInfo).port;
    const hub = new Hub(ctx, closers, port, config.HUB_HOST);
    log.info({ port }, 'hub listening');
    return hub;
  }

  /** Drains sockets, stops HTTP, runs subsystem closers in reverse, closes Redis. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const { io, app, log } = this.ctx;
      io.local.emit('session:closing', { reason: 'server_shutdown', message: 'The server is restarting; reconnect' });
      io.local.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await app.close().catch(() => undefined);
      for (const fn of [...this.#closers].reverse()) {
        try {
          await fn();
        } catch (err) {
          log.error({ err }, 'closer failed');
        }
      }
      log.info('hub closed');
    })();
    return this.#closing;
  }
}
