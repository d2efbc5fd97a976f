import { rooms, type HubServer } from '../socket/SocketGateway.js';

/**
 * Which devices (sessions) of a user are online, across every hub process.
 * Asked of the Socket.IO Redis adapter, which queries each live hub for the
 * sockets it holds: a crashed hub stops answering and its sockets stop
 * counting, so there is no presence state that can go stale.
 */
export class Presence {
  readonly #io: HubServer;

  constructor(io: HubServer) {
    this.#io = io;
  }

  /** Session ids of the user's connected devices. */
  async sessionsOf(userId: string): Promise<string[]> {
    const sockets = await this.#io.in(rooms.user(userId)).fetchSockets();
    return [...new Set(sockets.map((s) => s.data.sessionId))];
  }

  /** Whether a device (session) has at least one socket on any hub. */
  async isOnline(sessionId: string): Promise<boolean> {
    const sockets = await this.#io.in(rooms.session(sessionId)).fetchSockets();
    return sockets.length > 0;
  }
}
