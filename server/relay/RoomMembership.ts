import type { Redis } from 'ioredis';
import { keys } from '../keys.js';

export interface RoomMember {
  userId: string;
  deviceId: string;
}

/**
 * Which devices may use a relay room's media: a Redis set of
 * `userId:deviceId` per room, shared by every hub. The subsystem that owns
 * the room (a conference, or a 1:1 call moved to the relay) adds a device
 * when it joins and removes it when it leaves; MediaGateway refuses every
 * media request from a device that is not in the set (NOT_IN_ROOM).
 * The set expires RELAY_ROOM_TTL_S after its last change, as a safety net.
 */
export class RoomMembership {
  readonly #redis: Redis;
  readonly #ttlS: number;

  constructor(redis: Redis, ttlS: number) {
    this.#redis = redis;
    this.#ttlS = ttlS;
  }

  async add(roomId: string, userId: string, deviceId: string): Promise<void> {
    const key = keys.mediaMembers(roomId);
    await this.#redis.multi().sadd(key, member(userId, deviceId)).expire(key, this.#ttlS).exec();
  }

  async remove(roomId: string, userId: string, deviceId: string): Promise<void> {
    await this.#redis.srem(keys.mediaMembers(roomId), member(userId, deviceId));
  }

  /** Removes every device of a user (e.g. the host removed them from a conference). Returns the devices removed. */
  async removeUser(roomId: string, userId: string): Promise<RoomMember[]> {
    const mine = (await this.members(roomId)).filter((m) => m.userId === userId);
    if (mine.length) await this.#redis.srem(keys.mediaMembers(roomId), ...mine.map((m) => member(m.userId, m.deviceId)));
    return mine;
  }

  async isMember(roomId: string, userId: string, deviceId: string): Promise<boolean> {
    return (await this.#redis.sismember(keys.mediaMembers(roomId), member(userId, deviceId))) === 1;
  }

  async members(roomId: string): Promise<RoomMember[]> {
    const raw = await this.#redis.smembers(keys.mediaMembers(roomId));
    return raw.map(parseMember).filter((m): m is RoomMember => m !== undefined);
  }

  async clear(roomId: string): Promise<void> {
    await this.#redis.del(keys.mediaMembers(roomId));
  }
}

/** The relay peer id of a device in a room; user ids never contain ':'. */
export function peerIdOf(userId: string, deviceId: string): string {
  return `${userId}:${deviceId}`;
}

/** The user id part of a peer id. */
export function userIdOfPeer(peerId: string): string {
  const i = peerId.indexOf(':');
  return i < 0 ? peerId : peerId.slice(0, i);
}

function member(userId: string, deviceId: string): string {
  return peerIdOf(userId, deviceId);
}

function parseMember(raw: string): RoomMember | undefined {
  const i = raw.indexOf(':');
  if (i <= 0) return undefined;
  return { userId: raw.slice(0, i), deviceId: raw.slice(i + 1) };
}
