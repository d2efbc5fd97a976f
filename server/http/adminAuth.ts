import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../shared/protocol/errors.js';
import type { HubContext } from '../HubContext.js';

/**
 * Operator endpoints take `Authorization: Bearer <ADMIN_TOKEN>`. With no
 * ADMIN_TOKEN configured they are closed, except /metrics which then stays
 * open for a scraper on a private network (documented).
 */
export function requireAdmin(ctx: HubContext, request: FastifyRequest, opts: { openWithoutToken?: boolean } = {}): void {
  const expected = ctx.config.ADMIN_TOKEN;
  if (!expected) {
    if (opts.openWithoutToken) return;
    throw new AppError('FORBIDDEN', 'Operator endpoints are disabled: set ADMIN_TOKEN');
  }
  const header = request.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7) : '';
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new AppError('UNAUTHENTICATED', 'Operator token required');
}
