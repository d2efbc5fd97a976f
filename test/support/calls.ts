import type { Hub } from '../../server/Hub.js';
import type { CallEndedFact } from '../../server/calls/CallEndedFact.js';
import type { ClientSocket } from './hub.js';
import { request } from './hub.js';
import { connectUser, type TestUser } from './users.js';

/** An acknowledgement as tests read it. */
export type Ack = { ok: true; [k: string]: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } };

export async function ack(socket: ClientSocket, event: string, payload: unknown): Promise<Ack> {
  return request<Ack>(socket, event, payload);
}

/** Resolves with the ack, failing the test if it is an error. */
export async function ok<T = Record<string, unknown>>(socket: ClientSocket, event: string, payload: unknown): Promise<T & { ok: true }> {
  const res = await ack(socket, event, payload);
  if (!res.ok) throw new Error(`${event} failed: ${res.error.code} ${res.error.message}`);
  return res as unknown as T & { ok: true };
}

/** The error code of an ack that must fail. */
export async function errorCode(socket: ClientSocket, event: string, payload: unknown): Promise<string> {
  const res = await ack(socket, event, payload);
  if (res.ok) throw new Error(`${event} unexpectedly succeeded`);
  return res.error.code;
}

/** Records every payload of the given events on a socket, in order. */
export class Inbox {
  readonly events: { event: string; payload: Record<string, unknown> }[] = [];
  readonly #waiters: { match: (e: string, p: Record<string, unknown>) => boolean; resolve: (p: Record<string, unknown>) => void }[] = [];

  constructor(readonly socket: ClientSocket) {
    (socket as unknown as { onAny(l: (e: string, p: Record<string, unknown>) => void): void }).onAny((event, payload) => {
      this.events.push({ event, payload });
      for (const w of [...this.#waiters]) {
        if (w.match(event, payload)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(payload);
        }
      }
    });
  }

  /** All payloads of `event` (for `callId` when given) so far. */
  all(event: string, callId?: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === event && (callId === undefined || e.payload.callId === callId)).map((e) => e.payload);
  }

  /** The first payload of `event` (for `callId` when given), already received or still to come. */
  next<T = Record<string, unknown>>(event: string, callId?: string, timeoutMs = 5000): Promise<T> {
    const seen = this.all(event, callId)[0];
    if (seen) return Promise.resolve(seen as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        match: (e: string, p: Record<string, unknown>) => e === event && (callId === undefined || p.callId === callId),
        resolve: (p: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(p as T);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${event}${callId ? ` of ${callId}` : ''}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}

/** One connected device of a test user, with everything it received. */
export interface Device { user: TestUser; socket: ClientSocket; inbox: Inbox }

/** Connects a device of `user` to `hub`; its socket goes into `open`, for the suite to close after each test. */
export async function connectDevice(hub: Hub, user: TestUser, open: ClientSocket[]): Promise<Device> {
  const socket = await connectUser(hub, user);
  open.push(socket);
  return { user, socket, inbox: new Inbox(socket) };
}

/** Collects the call-ended facts a hub emits. */
export class FactLog {
  readonly facts: CallEndedFact[] = [];

  constructor(hub: Hub) {
    hub.ctx.events.on('call:ended', (f) => this.facts.push(f));
  }

  of(callId: string): CallEndedFact[] {
    return this.facts.filter((f) => f.callId === callId);
  }

  /** Waits for the fact of a call. */
  async next(callId: string, timeoutMs = 8000): Promise<CallEndedFact> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.of(callId)[0];
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no call-ended fact for ${callId}`);
      await sleep(20);
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An SDP-looking string of a given size (content is never parsed by the hub). */
export function fakeSdp(bytes = 600): string {
  const head = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
  return head + 'a=x:'.padEnd(Math.max(0, bytes - head.length), 'y');
}

export const candidate = (n: number) => ({
  candidate: `candidate:${n} 1 udp 2122260223 192.0.2.${n} 5${String(n).padStart(4, '0')} typ host`,
  sdpMid: '0',
  sdpMLineIndex: 0,
});
