import type { Hub } from '../../server/Hub.js';
import { connectSocket, type ClientSocket } from './hub.js';

export interface TestUser {
  userId: string;
  phone: string;
  displayName: string | null;
  deviceId: string;
  accessToken: string;
}

let counter = 0;

/** A unique, valid, mobile-looking E.164 number (UK 07700 900xxx is reserved for drama/testing). */
export function testPhone(): string {
  counter += 1;
  return `+447700${String(900000 + ((process.pid * 7 + counter) % 1000)).padStart(6, '0')}`;
}

/**
 * A signed-in user with one device. Uses the hub's own account and session
 * services in-process (identity tests cover the HTTP sign-up flow itself).
 */
export async function createUser(hub: Hub, opts: { phone?: string; displayName?: string | null; deviceId?: string } = {}): Promise<TestUser> {
  const phone = opts.phone ?? testPhone();
  const { profile } = await hub.ctx.accounts.findOrCreate(phone, opts.displayName === undefined ? `User ${phone.slice(-4)}` : opts.displayName);
  return addDevice(hub, { userId: profile.userId, phone, displayName: profile.displayName }, opts.deviceId);
}

/** Signs the same user in on another device. */
export async function addDevice(hub: Hub, user: { userId: string; phone: string; displayName: string | null }, deviceId?: string): Promise<TestUser> {
  const did = deviceId ?? `dev-${Math.random().toString(36).slice(2, 10)}`;
  const session = await hub.ctx.sessions.create(user.userId, did);
  const { token } = hub.ctx.tokens.issue({ userId: user.userId, sessionId: session.sessionId, deviceId: did });
  return { ...user, deviceId: did, accessToken: token };
}

export function connectUser(hub: Hub, user: TestUser, opts: { reconnection?: boolean } = {}): Promise<ClientSocket> {
  return connectSocket(hub.url, user.accessToken, opts);
}
