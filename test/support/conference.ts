import type { Hub } from '../../server/Hub.js';
import type { ClientSocket } from './hub.js';
import { connectUser, type TestUser } from './users.js';
import { Inbox, ok } from './calls.js';
import { audioRtpParameters, clientDtlsParameters } from './relay.js';

/** One signed-in device with its socket and everything it received. */
export interface Device {
  user: TestUser;
  socket: ClientSocket;
  inbox: Inbox;
}

/** Connects a user's device to a hub; the socket is added to `open` so an after hook can close it. */
export async function connectDevice(hub: Hub, user: TestUser, open: ClientSocket[]): Promise<Device> {
  const socket = await connectUser(hub, user);
  open.push(socket);
  return { user, socket, inbox: new Inbox(socket) };
}

/**
 * The first payload of `event` matching `match` (already received or still
 * to come); fails after `timeoutMs`. Conference notices carry a
 * `conferenceId`, not the `callId` Inbox.next() filters on.
 */
export async function waitFor<T = Record<string, unknown>>(
  d: Device,
  event: string,
  match: (p: Record<string, unknown>) => boolean = () => true,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = d.inbox.events.find((e) => e.event === event && match(e.payload));
    if (hit) return hit.payload as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${event}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Payloads of `event` about one conference, in order. */
export function received(d: Device, event: string, conferenceId: string): Record<string, unknown>[] {
  return d.inbox.events.filter((e) => e.event === event && e.payload.conferenceId === conferenceId).map((e) => e.payload);
}

export const about = (conferenceId: string) => (p: Record<string, unknown>) => p.conferenceId === conferenceId;

/** Joins a relay room's media and sends one Opus track, as a browser would: returns the producer id. */
export async function sendAudio(d: Device, roomId: string, ssrc = 11111111): Promise<{ producerId: string; transportId: string }> {
  await ok(d.socket, 'media:join', { roomId });
  const send = await ok<{ id: string }>(d.socket, 'media:transport-create', { roomId, direction: 'send' });
  await ok(d.socket, 'media:transport-connect', { roomId, transportId: send.id, dtlsParameters: clientDtlsParameters() });
  const { producerId } = await ok<{ producerId: string }>(d.socket, 'media:produce', {
    roomId, transportId: send.id, kind: 'audio', rtpParameters: audioRtpParameters(ssrc), appData: { source: 'mic' },
  });
  return { producerId, transportId: send.id };
}
