import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { HubConfig } from './config.js';
import type { Logger } from '../shared/runtime/log.js';
import type { HubServer, SocketGateway } from './socket/SocketGateway.js';
import type { Tokens } from './identity/Tokens.js';
import type { Sessions } from './identity/Sessions.js';
import type { Accounts } from './identity/Accounts.js';
import type { PhoneHasher } from './identity/PhoneHasher.js';
import type { HubEvents } from './HubEvents.js';
import type { CallService } from './calls/CallService.js';
import type { RelayServices } from './relay/registerRelay.js';

/** A readiness check: resolves (optionally with a detail string) when healthy, rejects otherwise. */
export type HealthCheck = () => Promise<string | undefined>;

/**
 * What the hub's subsystems share. Built once in Hub.start(); each subsystem
 * registers its routes, socket handlers and closers on it.
 */
export interface HubContext {
  readonly hubId: string;
  readonly config: HubConfig;
  readonly log: Logger;
  /** Commands (never used for blocking reads or subscriptions). */
  readonly redis: Redis;
  readonly app: FastifyInstance;
  readonly io: HubServer;
  readonly gateway: SocketGateway;
  readonly tokens: Tokens;
  readonly sessions: Sessions;
  readonly accounts: Accounts;
  readonly phoneHasher: PhoneHasher;
  readonly events: HubEvents;
  readonly healthChecks: Map<string, HealthCheck>;
  /** 1:1 calls (set by registerCalls): relay fallback hook, relay marking, ending calls from other subsystems. */
  calls?: CallService;
  /** Relay rooms, media membership and client media signaling (set by registerRelay). */
  relay?: RelayServices;
  /** Registers a closer; closers run in reverse order of registration on shutdown. */
  onClose(fn: () => Promise<void> | void): void;
}
