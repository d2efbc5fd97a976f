import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../shared/protocol/errors.js';
import {
  AuthCodeRequest, AuthVerifyRequest, NoBody, RefreshRequest,
} from '../../shared/protocol/identity.js';
import type { HubContext } from '../HubContext.js';
import { rooms } from '../socket/SocketGateway.js';
import type { Devices, DeviceRecord } from '../identity/Devices.js';
import type { Erasure } from '../identity/Erasure.js';
import type { OtpService } from '../identity/OtpService.js';
import type { PhoneNumbers } from '../identity/PhoneNumbers.js';
import type { RateLimiter } from '../identity/RateLimiter.js';
import { keys } from '../keys.js';
import type { Profile } from '../identity/Accounts.js';
import { parse } from './errors.js';

/** The signed-in caller of an HTTP request. */
export interface Principal {
  userId: string;
  sessionId: string;
  deviceId: string;
}

export const MINIMUM_AGE = 13;

/**
 * Checks `Authorization: Bearer <access token>`: signature, algorithm, kid,
 * iss, aud, exp, and that the session still exists (logout, refresh-token
 * reuse and erasure remove it). Any route of any subsystem may use it.
 */
export async function authenticate(ctx: HubContext, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([^\s]+)$/.exec(header) : null;
  if (!match) throw new AppError('UNAUTHENTICATED', 'Send Authorization: Bearer <access token>');
  const claims = ctx.tokens.verify(match[1]);
  if (!(await ctx.sessions.isActive(claims.sub, claims.sid))) throw new AppError('SESSION_REVOKED');
  return { userId: claims.sub, sessionId: claims.sid, deviceId: claims.did };
}

export interface AuthRouteDeps {
  otp: OtpService;
  numbers: PhoneNumbers;
  devices: Devices;
  erasure: Erasure;
  limiter: RateLimiter;
}

/** `/v1/auth/*`: code, verify, refresh, logout. */
export function registerAuthRoutes(ctx: HubContext, deps: AuthRouteDeps): void {
  const { app, config } = ctx;
  const log = ctx.log.child({ sub: 'auth' });

  app.post('/v1/auth/code', async (request) => {
    const body = parse(AuthCodeRequest, request.body);
    const number = deps.numbers.parseForSignUp(body.phone);
    const sent = await deps.otp.request({ e164: number.e164, channel: body.channel, locale: body.locale ?? 'en', ip: request.ip });
    return { channel: body.channel, expiresIn: sent.expiresIn, resendAfter: sent.resendAfter, codeLength: 6 as const };
  });

  app.post('/v1/auth/verify', async (request) => {
    const body = parse(AuthVerifyRequest, request.body);
    const number = deps.numbers.parseForSignUp(body.phone);
    await deps.otp.verify({ e164: number.e164, code: body.code, ip: request.ip });

    if (body.age !== undefined && body.age < MINIMUM_AGE) {
      const existing = await ctx.accounts.findByPhone(number.e164);
      if (existing) await deps.erasure.erase(existing, 'under_minimum_age');
      else await deps.otp.forgetNumber(number.e164);
      throw new AppError('UNDER_MINIMUM_AGE', existing
        ? 'Accounts are not available to children under 13; the existing account was erased'
        : 'Accounts are not available to children under 13; no account was created');
    }

    const found = await ctx.accounts.findOrCreate(number.e164, body.displayName ?? null, body.age !== undefined ? { age: body.age } : {});
    let profile: Profile = found.profile;
    if (!found.created && body.age !== undefined && profile.age !== body.age) {
      profile = (await ctx.accounts.update(profile.userId, { age: body.age })) ?? profile;
    }
    const deviceId = `d${randomBytes(12).toString('base64url')}`;
    const session = await ctx.sessions.create(profile.userId, deviceId, {
      refreshTtlSeconds: config.REFRESH_TOKEN_TTL_S,
      device: { platform: body.device.platform, ...(body.device.name !== undefined ? { name: body.device.name } : {}) },
    });
    const access = ctx.tokens.issue({ userId: profile.userId, sessionId: session.sessionId, deviceId });
    const device: DeviceRecord = (await deps.devices.get(profile.userId, deviceId)) ?? { deviceId, createdAt: session.createdAt, updatedAt: session.createdAt };
    if (found.created) {
      log.info({ userId: profile.userId }, 'account created');
      ctx.events.emit('user:registered', { userId: profile.userId, phone: profile.phone, displayName: profile.displayName });
    }
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: session.refreshToken,
      refreshTokenExpiresAt: session.refreshExpiresAt,
      user: publicProfile(profile),
      device,
      sessionId: session.sessionId,
      newUser: found.created,
    };
  });

  const refreshLimit = { limit: config.REFRESH_PER_SESSION_PER_HOUR, windowSeconds: 3600 };
  app.post('/v1/auth/refresh', async (request) => {
    const body = parse(RefreshRequest, request.body);
    const rotated = await ctx.sessions.rotate(body.refreshToken, {
      refreshTtlSeconds: config.REFRESH_TOKEN_TTL_S,
      // Counted only for genuine current tokens: forged ones cannot drain a session's budget, and a spent one always revokes.
      beforeRotate: async (_userId, sessionId) => {
        const decision = await deps.limiter.consume(keys.rateLimit('refresh', sessionId), refreshLimit);
        if (!decision.allowed) {
          throw new AppError('RATE_LIMITED', 'Too many refreshes for this session; keep the current refresh token and retry later', {
            retryAfter: decision.retryAfter, details: { limit: 'refresh' },
          });
        }
      },
      onReuse: (userId, sessionId) => {
        log.warn({ userId, sessionId }, 'spent refresh token presented; session revoked');
        ctx.gateway.closeRoom(rooms.session(sessionId), 'session_revoked', 'A refresh token was used twice; sign in again');
      },
    });
    const access = ctx.tokens.issue({ userId: rotated.userId, sessionId: rotated.sessionId, deviceId: rotated.deviceId });
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: rotated.refreshToken,
      refreshTokenExpiresAt: rotated.refreshExpiresAt,
    };
  });

  app.post('/v1/auth/logout', async (request) => {
    const me = await authenticate(ctx, request);
    parse(NoBody, request.body);
    await ctx.sessions.revoke(me.userId, me.sessionId);
    ctx.gateway.closeRoom(rooms.session(me.sessionId), 'session_revoked', 'Signed out');
    return { loggedOut: true as const };
  });
}

/** The profile as clients see it (only fields that are set). */
export function publicProfile(p: Profile): Profile {
  const out: Profile = { userId: p.userId, phone: p.phone, displayName: p.displayName, createdAt: p.createdAt };
  if (p.age !== undefined) out.age = p.age;
  if (p.gender !== undefined) out.gender = p.gender;
  return out;
}
