import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply } from 'fastify';
import type { HubContext } from '../HubContext.js';
import { AppError } from '../../shared/protocol/errors.js';
import { sendError } from './errors.js';

/** Where `scripts/build-web.ts` writes the softphone bundle. */
export const WEB_DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');

// The page talks only to its own origin (HTTP API and Socket.IO); media goes
// peer-to-peer or to a relay, which CSP does not govern.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' blob: mediastream:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The web softphone: `GET /` serves `web/dist/index.html` (revalidated on every
 * load), `/assets/*` the content-hashed bundle (cached for a year). When the
 * bundle was never built, `/` says how to build it instead of failing opaquely.
 */
export function registerWeb(ctx: HubContext, distDir = WEB_DIST_DIR): void {
  const { app } = ctx;
  const assetsDir = join(distDir, 'assets');
  const built = () => existsSync(join(distDir, 'index.html'));

  // sendFile exists only once the static plugin is registered, so this is
  // decided once: a bundle built after the hub started needs a restart.
  const served = existsSync(assetsDir);
  if (served) {
    void app.register(fastifyStatic, {
      root: assetsDir,
      prefix: '/assets/',
      index: false,
      wildcard: true,
      decorateReply: true,
      immutable: true,
      maxAge: '365d',
    });
  } else {
    ctx.log.warn('web bundle missing; run `npm run build:web` to serve the softphone');
  }

  const sendIndex = (reply: FastifyReply) => {
    if (!served || !built()) {
      return sendError(reply, new AppError('UNAVAILABLE', 'The web softphone is not built; run `npm run build:web`'));
    }
    return reply
      .header('Cache-Control', 'no-cache')
      .header('Content-Security-Policy', CSP)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .sendFile('index.html', distDir);
  };
  app.get('/', (_request, reply) => sendIndex(reply));
  // Browsers ask for it on every page load; an empty answer keeps logs quiet.
  app.get('/favicon.ico', (_request, reply) => reply.code(204).send());
}
