/**
 * Stable error codes shared by hub, relay and clients. A code never changes
 * meaning once released; clients switch on it, humans read `message`.
 * Each code carries the HTTP status used when it travels over HTTP.
 */
export const ErrorCodes = {
  // Generic
  BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  VALIDATION_FAILED: { status: 400, message: 'The payload does not match the schema' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The payload is too large' },
  UNKNOWN_EVENT: { status: 400, message: 'Unknown event' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  INTERNAL: { status: 500, message: 'Internal error' },
  UNAVAILABLE: { status: 503, message: 'Service temporarily unavailable' },
  TIMEOUT: { status: 504, message: 'The operation timed out' },

  // Authentication and sessions
  UNAUTHENTICATED: { status: 401, message: 'Authentication required' },
  TOKEN_INVALID: { status: 401, message: 'The token is invalid' },
  TOKEN_EXPIRED: { status: 401, message: 'The token has expired' },
  REFRESH_TOKEN_INVALID: { status: 401, message: 'The refresh token is invalid' },
  REFRESH_TOKEN_REUSED: { status: 401, message: 'The refresh token was already used; the session is revoked' },
  SESSION_REVOKED: { status: 401, message: 'The session was revoked' },
  ACCOUNT_DELETED: { status: 401, message: 'The account no longer exists' },
  FORBIDDEN: { status: 403, message: 'Not allowed' },

  // Identity
  PHONE_INVALID: { status: 400, message: 'The phone number is not valid' },
  PHONE_TYPE_REFUSED: { status: 400, message: 'Premium-rate and shared-cost numbers are not accepted' },
  COUNTRY_NOT_ALLOWED: { status: 400, message: 'Numbers from this country are not accepted' },
  CODE_INVALID: { status: 400, message: 'The code is wrong' },
  CODE_EXPIRED: { status: 400, message: 'The code has expired or was never sent' },
  CODE_ATTEMPTS_EXCEEDED: { status: 429, message: 'Too many wrong codes; request a new one' },
  CODE_DELIVERY_FAILED: { status: 502, message: 'The code could not be delivered' },
  UNDER_MINIMUM_AGE: { status: 403, message: 'Accounts are not available to children under 13' },
  DISCOVERY_QUOTA_EXCEEDED: { status: 429, message: 'Contact discovery quota exceeded' },

  // Calls
  CALL_NOT_FOUND: { status: 404, message: 'No such call' },
  CALL_INVALID_STATE: { status: 409, message: 'The call is not in a state that allows this' },
  CALL_ALREADY_ANSWERED: { status: 409, message: 'The call was already answered' },
  CALLEE_NOT_FOUND: { status: 404, message: 'The callee is not a user' },
  CALLEE_BUSY: { status: 486, message: 'The callee is busy' },
  CALL_SELF: { status: 400, message: 'You cannot call yourself' },
  SDP_TOO_LARGE: { status: 413, message: 'The session description is too large' },

  // Relay and conferences
  RELAY_UNAVAILABLE: { status: 503, message: 'No relay node is available' },
  RELAY_ERROR: { status: 502, message: 'The relay refused the request' },
  ROOM_NOT_FOUND: { status: 404, message: 'No such room' },
  ROOM_FULL: { status: 409, message: 'The conference is full' },
  NOT_IN_ROOM: { status: 403, message: 'You are not a participant of this room' },
  NOT_HOST: { status: 403, message: 'Only the host can do this' },
  TRANSPORT_NOT_FOUND: { status: 404, message: 'No such transport' },
  PRODUCER_NOT_FOUND: { status: 404, message: 'No such producer' },
  CONSUMER_NOT_FOUND: { status: 404, message: 'No such consumer' },
  RTP_PARAMETERS_INVALID: { status: 400, message: 'The RTP parameters are not acceptable' },
  RECORDING_REFUSED: { status: 403, message: 'Media may not leave a call' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Seconds to wait before retrying, for RATE_LIMITED and similar. */
  retryAfter?: number;
  /** Extra machine-readable detail (e.g. the failing field). Never personal data. */
  details?: unknown;
}

/** A typed error with a stable code; thrown by handlers, converted once at the boundary. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfter?: number;
  readonly details?: unknown;

  constructor(code: ErrorCode, message?: string, extra: { retryAfter?: number; details?: unknown } = {}) {
    super(message ?? ErrorCodes[code].message);
    this.name = 'AppError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
    if (extra.details !== undefined) this.details = extra.details;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.retryAfter !== undefined) body.retryAfter = this.retryAfter;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}
