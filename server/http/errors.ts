import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { z } from 'zod';
import { AppError } from '../../shared/protocol/errors.js';
import { validationError } from '../socket/SocketGateway.js';
import type { Logger } from '../../shared/runtime/log.js';

/** Validates an HTTP body (or query) at the boundary; throws a typed error before any side effect. */
export function parse<S extends z.ZodTypeAny>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw validationError(result.error);
  return result.data;
}

export function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('Retry-After', String(Math.ceil(err.retryAfter)));
  return reply.code(err.status).send({ ok: false, error: err.toBody() });
}

/** One error boundary for all routes: typed errors keep their code, the rest become INTERNAL. */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    if (error instanceof AppError) return sendError(reply, error);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new AppError('PAYLOAD_TOO_LARGE'));
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, new AppError('BAD_REQUEST', 'Content-Type must be application/json'));
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error instanceof SyntaxError || error.statusCode === 400) {
      return sendError(reply, new AppError('BAD_REQUEST', 'The body is not valid JSON'));
    }
    if (error.statusCode === 429) return sendError(reply, new AppError('RATE_LIMITED'));
    // Route pattern only: the raw URL can carry ids.
    log.error({ err: error, route: request.routeOptions.url ?? 'unmatched', method: request.method }, 'request failed');
    return sendError(reply, new AppError('INTERNAL'));
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new AppError('NOT_FOUND')));
}
