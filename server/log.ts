import { pino, type Logger } from 'pino';

/**
 * Structured logs: one root logger per process, a child per subsystem with ids
 * as fields. Personal data never goes in; the redaction list is a safety net
 * for fields that must not appear even by mistake.
 */
export const REDACTED_FIELDS = [
  'phone', '*.phone', 'to', '*.to', 'code', '*.code', 'name', '*.name', 'displayName', '*.displayName',
  'sdp', '*.sdp', 'candidate', '*.candidate', 'ip', '*.ip', 'remoteAddress', '*.remoteAddress',
  'accessToken', '*.accessToken', 'refreshToken', '*.refreshToken', 'token', '*.token',
  'req.headers.authorization', 'req.remoteAddress', 'req.remotePort', 'req.hostname',
  'pushToken', '*.pushToken', 'voipToken', '*.voipToken', 'email', '*.email',
];

export function createLogger(opts: { level: string; name: string; base?: Record<string, unknown> }): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    base: { pid: process.pid, ...opts.base },
    redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
