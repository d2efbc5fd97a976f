import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { HubContext } from '../HubContext.js';
import { CallActivity } from '../metrics/CallActivity.js';
import { requireAdmin } from './adminAuth.js';
import { parse } from './errors.js';

const ActivityQuery = z.object({ minutes: z.coerce.number().int().min(1).max(24 * 60).default(60) }).strict();

// Read once at startup: the page is static; its data comes from the JSON endpoints.
const dashboardHtml = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8');

/**
 * Operator dashboard: `/admin` (the page; it asks for the admin token and
 * keeps it in the tab's sessionStorage), `/admin/activity` (cluster-wide
 * call activity per minute) next to `/admin/relays` (relay load per node and
 * worker) and `/metrics`.
 */
export function registerAdminRoutes(ctx: HubContext): void {
  const activity = new CallActivity(ctx.redis);
  const log = ctx.log.child({ sub: 'admin' });
  ctx.events.on('call:ended', (fact) => {
    activity.record(fact).catch((err: unknown) => log.warn({ err }, 'activity not recorded'));
  });

  ctx.app.get('/admin', async (_request, reply) => {
    reply.header('Content-Type', 'text/html; charset=utf-8');
    reply.header('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    return dashboardHtml;
  });

  ctx.app.get('/admin/activity', async (request) => {
    requireAdmin(ctx, request);
    const { minutes } = parse(ActivityQuery, request.query);
    const sockets = (await ctx.io.fetchSockets()).length;
    return { ok: true, hubs: await hubCount(ctx), sockets, minutes: await activity.recent(minutes) };
  });
}

/** Hub processes sharing this Redis, as the Socket.IO adapter sees them. */
async function hubCount(ctx: HubContext): Promise<number> {
  const adapter = ctx.io.of('/').adapter as unknown as { serverCount?: () => Promise<number> };
  return adapter.serverCount ? adapter.serverCount() : 1;
}
