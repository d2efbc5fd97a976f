/**
 * The identity HTTP API (`/v1/auth/*`, `/v1/me*`): request bodies and replies,
 * shared by the hub (which validates with them), clients, tests and docs.
 * Success replies are plain JSON objects; failures are
 * `{ ok: false, error: { code, message, retryAfter?, details? } }` with the
 * code's HTTP status (and `Retry-After` on 429).
 */
import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import { DeviceId, DisplayName, E164, Id, PhoneInput, Platform, UserId } from './common.js';

/** One HTTP route: what it takes, what it answers, which error codes it may give. */
export interface HttpRouteSpec<Req extends z.ZodTypeAny | undefined = z.ZodTypeAny | undefined, Res extends z.ZodTypeAny = z.ZodTypeAny> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /** Needs `Authorization: Bearer <access token>`. */
  auth: boolean;
  request: Req;
  response: Res;
  errors: ErrorCode[];
  description: string;
}

export const httpRoute = <Req extends z.ZodTypeAny | undefined, Res extends z.ZodTypeAny>(
  spec: HttpRouteSpec<Req, Res>,
): HttpRouteSpec<Req, Res> => spec;

export const CodeChannel = z.enum(['sms', 'voice']);
/** BCP 47 language tag, e.g. `en`, `pt-BR`. */
export const Locale = z.string().max(35).regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/, 'must be a language tag');
export const OtpCode = z.string().regex(/^\d{6}$/, 'must be 6 digits');
export const Age = z.number().int().min(0).max(150);
export const Gender = z.enum(['female', 'male', 'non_binary', 'other', 'undisclosed']);
/** APNs / PushKit / FCM registration token. */
export const PushToken = z.string().min(1).max(4096).regex(/^[A-Za-z0-9:_.-]+$/, 'must be a push token');
export const DeviceName = z.string().trim().min(1).max(64);
/** Opaque to clients: store it and send it back to /v1/auth/refresh. */
export const RefreshToken = z.string().min(1).max(512);

export const AuthCodeRequest = z.object({
  phone: PhoneInput,
  channel: CodeChannel.default('sms'),
  locale: Locale.optional(),
}).strict();

export const AuthCodeResponse = z.object({
  channel: CodeChannel,
  /** Seconds the code stays valid. */
  expiresIn: z.number().int(),
  /** Seconds before another code may be requested for this number. */
  resendAfter: z.number().int(),
  codeLength: z.literal(6),
});

export const DeviceSignIn = z.object({ platform: Platform, name: DeviceName.optional() }).strict();

export const AuthVerifyRequest = z.object({
  phone: PhoneInput,
  code: OtpCode,
  device: DeviceSignIn,
  /** Used only when the number has no account yet. */
  displayName: DisplayName.optional(),
  /** When given and under 13, no account is created (an existing one is erased). */
  age: Age.optional(),
}).strict();

export const Profile = z.object({
  userId: UserId,
  phone: E164,
  displayName: DisplayName.nullable(),
  createdAt: z.number(),
  age: Age.optional(),
  gender: Gender.optional(),
});

export const Device = z.object({
  deviceId: DeviceId,
  platform: Platform.optional(),
  name: z.string().optional(),
  pushToken: z.string().optional(),
  /** iOS PushKit (VoIP) token. */
  voipToken: z.string().optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
});

export const SessionInfo = z.object({
  sessionId: Id,
  deviceId: DeviceId,
  createdAt: z.number(),
  lastRefreshAt: z.number().optional(),
  refreshExpiresAt: z.number().optional(),
  current: z.boolean(),
});

export const TokenPair = z.object({
  accessToken: z.string(),
  /** Epoch ms. */
  accessTokenExpiresAt: z.number(),
  refreshToken: RefreshToken,
  /** Epoch ms. */
  refreshTokenExpiresAt: z.number(),
});

export const AuthVerifyResponse = TokenPair.extend({
  user: Profile,
  device: Device,
  sessionId: Id,
  /** True when this verification created the account. */
  newUser: z.boolean(),
});

export const RefreshRequest = z.object({ refreshToken: RefreshToken }).strict();
export const RefreshResponse = TokenPair;

export const NoBody = z.object({}).strict();
export const LogoutResponse = z.object({ loggedOut: z.literal(true) });

export const MeResponse = z.object({ user: Profile, sessionId: Id, deviceId: DeviceId });

export const MePatchRequest = z.object({
  displayName: DisplayName.optional(),
  /** null clears it. Under 13 erases the account. */
  age: Age.nullable().optional(),
  /** null clears it. */
  gender: Gender.nullable().optional(),
}).strict().refine((v) => Object.keys(v).length > 0, { message: 'give at least one field' });

export const DevicePutRequest = z.object({
  platform: Platform,
  name: DeviceName.optional(),
  /** Omitted means none (PUT replaces the device's registration). */
  pushToken: PushToken.optional(),
  voipToken: PushToken.optional(),
}).strict();
export const DeviceResponse = z.object({ device: Device });

export const DeleteMeResponse = z.object({ deleted: z.literal(true) });

export const ExportResponse = z.object({
  exportedAt: z.number(),
  user: Profile,
  devices: z.array(Device),
  sessions: z.array(SessionInfo),
  addressBook: z.object({
    /** Distinct numbers held (as keyed hashes). */
    numbers: z.number().int(),
    /** Distinct emails held (as keyed hashes). */
    emails: z.number().int(),
    /** The client's own entry ids stored with them. */
    clientIds: z.array(z.string()),
  }),
  discovery: z.object({ newNumbersCheckedToday: z.number().int(), dailyLimit: z.number().int() }),
});

const authErrors: ErrorCode[] = ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED'];
const bodyErrors: ErrorCode[] = ['BAD_REQUEST', 'VALIDATION_FAILED', 'PAYLOAD_TOO_LARGE'];

export const identityRoutes = {
  authCode: httpRoute({
    method: 'POST', path: '/v1/auth/code', auth: false, request: AuthCodeRequest, response: AuthCodeResponse,
    errors: [...bodyErrors, 'PHONE_INVALID', 'PHONE_TYPE_REFUSED', 'COUNTRY_NOT_ALLOWED', 'RATE_LIMITED', 'CODE_DELIVERY_FAILED'],
    description: 'Sends a 6-digit code to the number by SMS or voice call. Does not reveal whether the number has an account.',
  }),
  authVerify: httpRoute({
    method: 'POST', path: '/v1/auth/verify', auth: false, request: AuthVerifyRequest, response: AuthVerifyResponse,
    errors: [...bodyErrors, 'PHONE_INVALID', 'PHONE_TYPE_REFUSED', 'COUNTRY_NOT_ALLOWED', 'CODE_INVALID', 'CODE_EXPIRED', 'CODE_ATTEMPTS_EXCEEDED', 'RATE_LIMITED', 'UNDER_MINIMUM_AGE', 'ACCOUNT_DELETED'],
    description: 'Checks the code and signs the device in, creating the account on first use.',
  }),
  authRefresh: httpRoute({
    method: 'POST', path: '/v1/auth/refresh', auth: false, request: RefreshRequest, response: RefreshResponse,
    errors: [...bodyErrors, 'REFRESH_TOKEN_INVALID', 'REFRESH_TOKEN_REUSED', 'SESSION_REVOKED', 'RATE_LIMITED'],
    description: 'Trades a refresh token for a new access token and a new refresh token; the old one is spent. Presenting a spent one revokes the session.',
  }),
  authLogout: httpRoute({
    method: 'POST', path: '/v1/auth/logout', auth: true, request: NoBody, response: LogoutResponse,
    errors: [...authErrors, ...bodyErrors],
    description: 'Revokes the current session (its refresh token and its device registration); its sockets are closed.',
  }),
  meGet: httpRoute({
    method: 'GET', path: '/v1/me', auth: true, request: undefined, response: MeResponse, errors: authErrors,
    description: 'The signed-in user.',
  }),
  mePatch: httpRoute({
    method: 'PATCH', path: '/v1/me', auth: true, request: MePatchRequest, response: MeResponse,
    errors: [...authErrors, ...bodyErrors, 'UNDER_MINIMUM_AGE'],
    description: 'Updates display name, age or gender. An age under 13 erases the account.',
  }),
  meDelete: httpRoute({
    method: 'DELETE', path: '/v1/me', auth: true, request: undefined, response: DeleteMeResponse, errors: authErrors,
    description: 'Erases the account and everything held about it; open sockets are closed with account_deleted.',
  }),
  meExport: httpRoute({
    method: 'GET', path: '/v1/me/export', auth: true, request: undefined, response: ExportResponse, errors: authErrors,
    description: 'Everything held about the user, in one document.',
  }),
  devicePut: httpRoute({
    method: 'PUT', path: '/v1/me/devices/:deviceId', auth: true, request: DevicePutRequest, response: DeviceResponse,
    errors: [...authErrors, ...bodyErrors, 'FORBIDDEN', 'NOT_FOUND'],
    description: 'Sets the calling device\'s platform, name and push tokens (only the device of the access token).',
  }),
};

export type AuthVerifyResponse = z.infer<typeof AuthVerifyResponse>;
export type ProfileReply = z.infer<typeof Profile>;
export type DeviceReply = z.infer<typeof Device>;
export type ExportReply = z.infer<typeof ExportResponse>;
