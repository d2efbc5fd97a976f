import { io, type Socket } from 'socket.io-client';

/**
 * A real Socket.IO client of the typed kind `S`, over WebSocket only and on
 * a connection of its own; resolves once connected, otherwise closes it and
 * rejects with the server's error data.
 */
export function openSocket<S extends Socket>(url: string, auth: Record<string, string>, opts: { reconnection?: boolean } = {}): Promise<S> {
  const socket = io(url, { auth, transports: ['websocket'], reconnection: opts.reconnection ?? false, forceNew: true }) as S;
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      socket.close();
      reject(Object.assign(new Error(err.message), { data: err.data }));
    });
  });
}
