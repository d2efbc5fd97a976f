import type { Socket } from 'socket.io-client';
import { Hub } from '../../server/Hub.js';
import { createLogger } from '../../shared/runtime/log.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../../shared/protocol/events.js';
import { testHubConfig } from './config.js';
import { openSocket } from './sockets.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** An in-process hub on a free port, against the given Redis. */
export async function startTestHub(redisUrl: string, overrides: Record<string, string> = {}): Promise<Hub> {
  const config = testHubConfig(redisUrl, overrides);
  return Hub.start(config, { log: createLogger({ level: config.LOG_LEVEL, name: 'hub' }) });
}

/** A real Socket.IO client; resolves once connected, rejects with the server's error data otherwise. */
export function connectSocket(url: string, token: string | undefined, opts: { reconnection?: boolean } = {}): Promise<ClientSocket> {
  return openSocket(url, token === undefined ? {} : { token }, opts);
}

/** Emits a request and resolves with its acknowledgement. */
export function request<T = Record<string, unknown>>(socket: ClientSocket, event: string, payload: unknown, timeoutMs = 5000): Promise<T> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<T> }).emitWithAck(event, payload);
}

/** Resolves with the next payload of `event`. */
export function nextEvent<T = unknown>(socket: ClientSocket, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const s = socket as unknown as { once(e: string, l: (p: T) => void): void; off(e: string, l: (p: T) => void): void };
    const timer = setTimeout(() => {
      s.off(event, listener);
      reject(new Error(`timed out waiting for ${event}`));
    }, timeoutMs);
    const listener = (p: T) => {
      clearTimeout(timer);
      resolve(p);
    };
    s.once(event, listener);
  });
}
