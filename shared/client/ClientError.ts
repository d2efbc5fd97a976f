import { isErrorCode, type ErrorBody, type ErrorCode } from '../protocol/errors.js';

/** Codes the SDK itself produces when no server answer exists. */
export type LocalErrorCode = 'NETWORK' | 'NOT_CONNECTED' | 'SIGNED_OUT' | 'MEDIA' | 'CLOSED';

/**
 * Every failure the SDK reports: a stable `code` from the shared error table
 * (or a local one when the server never answered), the server's message and,
 * where given, how long to wait before retrying.
 */
export class ClientError extends Error {
  readonly code: ErrorCode | LocalErrorCode;
  /** HTTP status for errors that came over HTTP. */
  readonly status?: number;
  readonly retryAfter?: number;
  readonly details?: unknown;

  constructor(code: ErrorCode | LocalErrorCode, message: string, extra: { status?: number; retryAfter?: number; details?: unknown; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ClientError';
    this.code = code;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
    if (extra.details !== undefined) this.details = extra.details;
  }

  /** From an `{ ok: false, error }` body; unknown codes become INTERNAL rather than leaking through. */
  static fromBody(body: Partial<ErrorBody> | undefined, status?: number): ClientError {
    const code = isErrorCode(body?.code) ? body.code : 'INTERNAL';
    const extra: { status?: number; retryAfter?: number; details?: unknown } = {};
    if (status !== undefined) extra.status = status;
    if (typeof body?.retryAfter === 'number') extra.retryAfter = body.retryAfter;
    if (body?.details !== undefined) extra.details = body.details;
    return new ClientError(code, typeof body?.message === 'string' ? body.message : code, extra);
  }
}
