import { randomInt } from 'node:crypto';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { Hub } from '../../server/Hub.js';
import type { TestUser } from './users.js';
import type { WebhookReceiver } from './webhookReceiver.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ApiOptions {
  body?: unknown;
  /** Sent as is (for malformed JSON and odd content types). */
  rawBody?: string;
  contentType?: string;
  token?: string;
  /** Client IP as seen through X-Forwarded-For (the hub must run with TRUST_PROXY=true). */
  ip?: string;
  headers?: Record<string, string>;
}

/** One HTTP call to the hub's API; never throws on an error status. */
export async function api<T = Record<string, unknown>>(hub: Hub, method: string, path: string, opts: ApiOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.ip) headers['x-forwarded-for'] = opts.ip;
  const res = await fetch(`${hub.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** The error code of a failed call (or undefined). */
export function errorCode(res: ApiResponse<unknown>): string | undefined {
  return (res.body as { error?: { code?: string } } | undefined)?.error?.code;
}

let sequence = randomInt(0, 500_000);

/**
 * A fresh valid UK mobile number (strict libphonenumber metadata accepts the
 * whole +44 74xx block). `block` picks the two digits after 74, so tests can
 * keep numbers under one prefix or spread them over several.
 */
export function validTestPhone(block?: string): string {
  sequence += 1;
  const b = block ?? String(randomInt(0, 100)).padStart(2, '0');
  const n = `+4474${b}${String((sequence * 7919) % 1_000_000).padStart(6, '0')}`;
  const parsed = parsePhoneNumberFromString(n);
  if (!parsed?.isValid()) throw new Error(`generated an invalid test number ${n}`);
  return n;
}

/** A private-range client IP, unique enough that per-IP limits of different tests do not meet. */
export function testIp(): string {
  return `10.${randomInt(0, 256)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

export interface SignedUpUser extends TestUser {
  refreshToken: string;
  sessionId: string;
  newUser: boolean;
}

/**
 * Signs up (or in) through the real HTTP flow: POST /v1/auth/code, read the
 * code the webhook receiver got, POST /v1/auth/verify. Returns a TestUser
 * usable with connectUser() plus the refresh token.
 */
export async function signUp(
  hub: Hub,
  receiver: WebhookReceiver,
  opts: { phone?: string; name?: string; platform?: 'ios' | 'android' | 'web' | 'desktop'; ip?: string; age?: number } = {},
): Promise<SignedUpUser> {
  const phone = opts.phone ?? validTestPhone();
  const ip = opts.ip ?? testIp();
  const before = receiver.codesFor(phone).length;
  const sent = await api(hub, 'POST', '/v1/auth/code', { body: { phone, channel: 'sms' }, ip });
  if (sent.status !== 200) throw new Error(`POST /v1/auth/code failed: ${sent.status} ${JSON.stringify(sent.body)}`);
  const { code } = await receiver.waitForCode(phone, { after: before });
  const verified = await api<{
    accessToken: string; refreshToken: string; sessionId: string; newUser: boolean;
    user: { userId: string; phone: string; displayName: string | null }; device: { deviceId: string };
  }>(hub, 'POST', '/v1/auth/verify', {
    body: {
      phone, code, device: { platform: opts.platform ?? 'ios' },
      ...(opts.name !== undefined ? { displayName: opts.name } : {}),
      ...(opts.age !== undefined ? { age: opts.age } : {}),
    },
    ip,
  });
  if (verified.status !== 200) throw new Error(`POST /v1/auth/verify failed: ${verified.status} ${JSON.stringify(verified.body)}`);
  const b = verified.body;
  return {
    userId: b.user.userId, phone: b.user.phone, displayName: b.user.displayName, deviceId: b.device.deviceId,
    accessToken: b.accessToken, refreshToken: b.refreshToken, sessionId: b.sessionId, newUser: b.newUser,
  };
}
