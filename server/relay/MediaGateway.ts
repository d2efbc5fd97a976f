import type { HubContext } from '../HubContext.js';
import type { HubSocket } from '../socket/SocketGateway.js';
import type { Logger } from '../../shared/runtime/log.js';
import { AppError } from '../../shared/protocol/errors.js';
import type { MediaProducer } from '../../shared/protocol/media.js';
import type { ProducerInfo } from '../../shared/protocol/relayControl.js';
import type { RelayService, RelayServiceEvents } from './RelayService.js';
import { peerIdOf, userIdOfPeer, type RoomMembership } from './RoomMembership.js';

/** Socket.IO rooms of media notices: every socket that joined a relay room's media, and each device's own. */
export const mediaRooms = {
  room: (roomId: string) => `media:${roomId}`,
  peer: (roomId: string, peerId: string) => `media:${roomId}:${peerId}`,
};

export interface MediaGatewayOptions {
  /** A device whose sockets are all gone this long leaves the room's media (its transports close). */
  disconnectGraceMs: number;
}

/**
 * Client-facing media signaling. Every `media:*` request is checked against
 * the room's membership (NOT_IN_ROOM otherwise) and forwarded to the room's
 * relay node as the device's peer (`userId:deviceId`), so the relay's own
 * checks apply to exactly that device. Relay notices become `media:*`
 * notices on the sockets of this hub that joined the room's media.
 *
 * The conference and call code decide who is in a room (RoomMembership) and
 * use `removePeer` / `closeRoom` here to take devices and rooms out.
 */
export class MediaGateway {
  readonly #ctx: HubContext;
  readonly #relay: RelayService;
  readonly #membership: RoomMembership;
  readonly #opts: MediaGatewayOptions;
  readonly #log: Logger;
  /** Media rooms each local socket joined, for the disconnect grace. */
  readonly #joined = new Map<string, Set<string>>();
  readonly #graceTimers = new Set<NodeJS.Timeout>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  constructor(ctx: HubContext, relay: RelayService, membership: RoomMembership, opts: MediaGatewayOptions) {
    this.#ctx = ctx;
    this.#relay = relay;
    this.#membership = membership;
    this.#opts = opts;
    this.#log = ctx.log.child({ sub: 'media' });
    this.#registerHandlers();
    this.#forwardNotices();
    ctx.gateway.onDisconnect((socket) => this.#onDisconnect(socket));
  }

  /**
   * Takes a device out of a room: no more media requests (membership), its
   * transports closed on the relay, its sockets out of the room's notices.
   */
  async removePeer(roomId: string, userId: string, deviceId: string): Promise<void> {
    const peerId = peerIdOf(userId, deviceId);
    await this.#membership.remove(roomId, userId, deviceId);
    await this.#leaveRelay(roomId, peerId);
    this.#ctx.io.in(mediaRooms.peer(roomId, peerId)).socketsLeave([mediaRooms.room(roomId), mediaRooms.peer(roomId, peerId)]);
  }

  /**
   * Pauses (mutes) or resumes a user's tracks on every device, e.g. a host
   * muting a participant; everyone in the room, the user included, gets
   * media:producer-paused. Returns how many tracks changed.
   */
  async setTracksPaused(roomId: string, userId: string, paused: boolean, kind?: 'audio' | 'video'): Promise<number> {
    const { producers } = await this.#relay.request(roomId, 'room.producers', {});
    const mine = producers.filter((p) => userIdOfPeer(p.peerId) === userId && (kind === undefined || p.kind === kind) && p.paused !== paused);
    await Promise.all(mine.map((p) => this.#relay.request(roomId, paused ? 'producer.pause' : 'producer.resume', { peerId: p.peerId, producerId: p.producerId })));
    return mine.length;
  }

  /** Ends a room's media: membership cleared, room closed on its relay node, sockets out of its notices. Idempotent. */
  async closeRoom(roomId: string): Promise<void> {
    await this.#membership.clear(roomId);
    await this.#relay.closeRoom(roomId);
    this.#ctx.io.in(mediaRooms.room(roomId)).socketsLeave(mediaRooms.room(roomId));
  }

  /** Stops grace timers and notice forwarding. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#graceTimers) clearTimeout(t);
    this.#graceTimers.clear();
    for (const off of this.#unsubscribe) off();
    this.#joined.clear();
  }

  #registerHandlers(): void {
    const { gateway } = this.#ctx;
    const relay = this.#relay;

    gateway.handle('media:capabilities', async (socket, { roomId }) => {
      await this.#authorize(socket, roomId);
      const { rtpCapabilities } = await relay.openRoom(roomId);
      return { rtpCapabilities };
    });

    gateway.handle('media:join', async (socket, { roomId, resume }) => {
      const peerId = await this.#authorize(socket, roomId);
      await relay.openRoom(roomId);
      // Into the notice rooms first, so no producer added meanwhile is missed
      // (it may then be both listed and announced; clients dedupe).
      await socket.join([mediaRooms.room(roomId), mediaRooms.peer(roomId, peerId)]);
      try {
        const res = await relay.request(roomId, 'peer.join', { peerId, resume: resume ?? false });
        this.#track(socket, roomId);
        const speaker = res.activeSpeaker;
        return {
          rtpCapabilities: res.rtpCapabilities,
          producers: res.producers.map(toClientProducer),
          resumed: res.resumed,
          // room.activeSpeaker announces changes only: a device joining later learns the current one here.
          activeSpeaker: speaker ? { peerId: speaker.peerId, userId: userIdOfPeer(speaker.peerId) } : null,
        };
      } catch (err) {
        await socket.leave(mediaRooms.room(roomId));
        await socket.leave(mediaRooms.peer(roomId, peerId));
        throw err;
      }
    });

    gateway.handle('media:transport-create', async (socket, { roomId, direction }) => {
      const peerId = await this.#authorize(socket, roomId);
      return relay.request(roomId, 'transport.create', { peerId, direction });
    });

    gateway.handle('media:transport-connect', async (socket, { roomId, transportId, dtlsParameters }) => {
      const peerId = await this.#authorize(socket, roomId);
      await relay.request(roomId, 'transport.connect', { peerId, transportId, dtlsParameters });
      return {};
    });

    gateway.handle('media:restart-ice', async (socket, { roomId, transportId }) => {
      const peerId = await this.#authorize(socket, roomId);
      return relay.request(roomId, 'transport.restartIce', { peerId, transportId });
    });

    gateway.handle('media:produce', async (socket, { roomId, transportId, kind, rtpParameters, appData }) => {
      const peerId = await this.#authorize(socket, roomId);
      return relay.request(roomId, 'produce', { peerId, transportId, kind, rtpParameters, ...(appData ? { appData } : {}) });
    });

    gateway.handle('media:consume', async (socket, { roomId, transportId, producerId, rtpCapabilities }) => {
      const peerId = await this.#authorize(socket, roomId);
      return relay.request(roomId, 'consume', { peerId, transportId, producerId, rtpCapabilities });
    });

    const simple = <E extends 'media:consumer-resume' | 'media:consumer-pause'>(event: E, name: 'consumer.resume' | 'consumer.pause') => {
      gateway.handle(event, async (socket, { roomId, consumerId }) => {
        const peerId = await this.#authorize(socket, roomId);
        await relay.request(roomId, name, { peerId, consumerId });
        return {};
      });
    };
    simple('media:consumer-resume', 'consumer.resume');
    simple('media:consumer-pause', 'consumer.pause');

    const producerOp = <E extends 'media:producer-pause' | 'media:producer-resume' | 'media:producer-close'>(event: E, name: 'producer.pause' | 'producer.resume' | 'producer.close') => {
      gateway.handle(event, async (socket, { roomId, producerId }) => {
        const peerId = await this.#authorize(socket, roomId);
        await relay.request(roomId, name, { peerId, producerId });
        return {};
      });
    };
    producerOp('media:producer-pause', 'producer.pause');
    producerOp('media:producer-resume', 'producer.resume');
    producerOp('media:producer-close', 'producer.close');

    // Leaving needs no membership: it only ever affects the caller's own peer.
    gateway.handle('media:leave', async (socket, { roomId }) => {
      const peerId = peerIdOf(socket.data.userId, socket.data.deviceId);
      await this.#leaveRelay(roomId, peerId);
      await socket.leave(mediaRooms.room(roomId));
      await socket.leave(mediaRooms.peer(roomId, peerId));
      this.#joined.get(socket.id)?.delete(roomId);
      return {};
    });
  }

  #forwardNotices(): void {
    const io = this.#ctx.io.local;
    const on = <K extends keyof RelayServiceEvents>(name: K, listener: (...args: RelayServiceEvents[K]) => void) => {
      this.#relay.on(name, listener as never);
      this.#unsubscribe.push(() => this.#relay.off(name, listener as never));
    };
    on('peer.producerAdded', ({ roomId, ...info }) => {
      io.to(mediaRooms.room(roomId)).except(mediaRooms.peer(roomId, info.peerId)).emit('media:producer-added', { roomId, ...toClientProducer(info) });
    });
    on('peer.producerClosed', ({ roomId, peerId, producerId, kind }) => {
      io.to(mediaRooms.room(roomId)).except(mediaRooms.peer(roomId, peerId)).emit('media:producer-closed', { roomId, peerId, userId: userIdOfPeer(peerId), producerId, kind });
    });
    // To the owner as well: a host may have muted it.
    on('peer.producerPaused', ({ roomId, peerId, producerId, kind, paused }) => {
      io.to(mediaRooms.room(roomId)).emit('media:producer-paused', { roomId, peerId, userId: userIdOfPeer(peerId), producerId, kind, paused });
    });
    on('consumer.closed', ({ roomId, peerId, consumerId, producerId }) => {
      io.to(mediaRooms.peer(roomId, peerId)).emit('media:consumer-closed', { roomId, consumerId, producerId });
    });
    on('transport.closed', ({ roomId, peerId, transportId, reason }) => {
      io.to(mediaRooms.peer(roomId, peerId)).emit('media:transport-closed', { roomId, transportId, reason });
    });
    on('room.activeSpeaker', ({ roomId, peerId }) => {
      io.to(mediaRooms.room(roomId)).emit('media:active-speaker', { roomId, peerId, userId: userIdOfPeer(peerId) });
    });
    on('rooms.lost', ({ roomIds, reason }) => {
      for (const roomId of roomIds) {
        io.to(mediaRooms.room(roomId)).emit('media:room-lost', { roomId, reason, action: 'rejoin' });
      }
    });
  }

  /** NOT_IN_ROOM unless the socket's device is a member; returns its peer id. */
  async #authorize(socket: HubSocket, roomId: string): Promise<string> {
    const { userId, deviceId } = socket.data;
    if (!(await this.#membership.isMember(roomId, userId, deviceId))) throw new AppError('NOT_IN_ROOM');
    return peerIdOf(userId, deviceId);
  }

  async #leaveRelay(roomId: string, peerId: string): Promise<void> {
    try {
      await this.#relay.request(roomId, 'peer.leave', { peerId });
    } catch (err) {
      // A room that is gone has no peer to remove.
      if (err instanceof AppError && err.code === 'ROOM_NOT_FOUND') return;
      throw err;
    }
  }

  #track(socket: HubSocket, roomId: string): void {
    let rooms = this.#joined.get(socket.id);
    if (!rooms) {
      rooms = new Set();
      this.#joined.set(socket.id, rooms);
    }
    rooms.add(roomId);
  }

  /**
   * A device's socket went away. Its media may still flow (a socket
   * reconnects faster than ICE notices anything), so wait; if no socket of
   * that device is back in the room's notices by then (on any hub), take its
   * peer off the relay so nothing stays open for a client that is gone.
   */
  #onDisconnect(socket: HubSocket): void {
    const rooms = this.#joined.get(socket.id);
    this.#joined.delete(socket.id);
    if (!rooms || this.#closed) return;
    const peerId = peerIdOf(socket.data.userId, socket.data.deviceId);
    for (const roomId of rooms) {
      const timer = setTimeout(() => {
        this.#graceTimers.delete(timer);
        if (this.#closed) return;
        void this.#leaveIfGone(roomId, peerId);
      }, this.#opts.disconnectGraceMs);
      this.#graceTimers.add(timer);
    }
  }

  async #leaveIfGone(roomId: string, peerId: string): Promise<void> {
    try {
      const sockets = await this.#ctx.io.in(mediaRooms.peer(roomId, peerId)).fetchSockets();
      if (sockets.length > 0) return;
      await this.#leaveRelay(roomId, peerId);
      this.#log.info({ roomId }, 'device gone; its relay peer left');
    } catch (err) {
      this.#log.warn({ roomId, err: err instanceof Error ? err.message : String(err) }, 'could not remove a departed device from its relay room');
    }
  }
}

function toClientProducer(p: ProducerInfo): MediaProducer {
  return { ...p, userId: userIdOfPeer(p.peerId) };
}
