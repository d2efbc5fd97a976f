import { createHmac } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs: one root logger per process, a child per subsystem with ids
 * as fields. Personal data never goes in; the redaction list is a safety net
 * for fields that must not appear even by mistake.
 */
export const REDACTED_FIELDS = [
  // No bare 'name': it would blank pino's own logger name on every line.
  'phone', '*.phone', 'to', '*.to', 'code', '*.code', '*.name', 'displayName', '*.displayName',
  'sdp', '*.sdp', 'candidate', '*.candidate', 'ip', '*.ip', 'remoteAddress', '*.remoteAddress',
  'accessToken', '*.accessToken', 'refreshToken', '*.refreshToken', 'token', '*.token',
  'req.headers.authorization', 'req.remoteAddress', 'req.remotePort', 'req.hostname',
  'pushToken', '*.pushToken', 'voipToken', '*.voipToken', 'email', '*.email',
];

/**
 * Errors are logged as type, message, code and stack only. Library errors
 * carry more than that: ioredis attaches the failed command's arguments
 * (`err.command.args`: an SDP, an ICE candidate with an IP, a phone hash) and
 * pino's default serializer would print them all.
 */
export function safeError(err: unknown): Record<string, unknown> | unknown {
  if (!(err instanceof Error)) return typeof err === 'object' && err !== null ? { type: 'non-error', message: '[object]' } : err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.errCode = code;
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = safeError(err.cause);
  return out;
}

/**
 * Account and device ids in logs are replaced by keyed pseudonyms: lines
 * about the same user still correlate (and support, holding the key, can
 * find a user's lines), but a log leak does not map onto accounts. Without a
 * key the ids are blanked.
 */
export const PSEUDONYMISED_FIELDS = ['userId', 'callerId', 'calleeId', 'hostId', 'ownerId', 'deviceId'].flatMap((f) => [f, `*.${f}`]);

export function logPseudonym(key: string, value: unknown): string {
  return `~${createHmac('sha256', key).update(String(value)).digest('base64url').slice(0, 12)}`;
}

export function createLogger(
  opts: { level: string; name: string; base?: Record<string, unknown>; pseudonymKey?: string },
  destination?: DestinationStream,
): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    base: { pid: process.pid, ...opts.base },
    redact: {
      paths: [...REDACTED_FIELDS, ...PSEUDONYMISED_FIELDS],
      censor: (value: unknown, path: string[]) => {
        const field = path[path.length - 1] ?? '';
        const key = opts.pseudonymKey;
        return key && PSEUDONYMISED_FIELDS.includes(field) && value !== undefined && value !== null ? logPseudonym(key, value) : '[redacted]';
      },
    },
    serializers: { err: safeError, error: safeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination);
}

export type { Logger };
