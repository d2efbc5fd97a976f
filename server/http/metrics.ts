import type { HubContext } from '../HubContext.js';
import type { HubMetrics } from '../metrics/HubMetrics.js';
import { requireAdmin } from './adminAuth.js';

/** GET /metrics: Prometheus text format of this hub process. */
export function registerMetricsRoutes(ctx: HubContext, metrics: HubMetrics): void {
  ctx.app.get('/metrics', async (request, reply) => {
    requireAdmin(ctx, request, { openWithoutToken: true });
    reply.header('Content-Type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
