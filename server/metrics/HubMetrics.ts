import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubContext } from '../HubContext.js';

/**
 * Prometheus metrics of one hub process, in its own registry (tests run
 * several hubs in one process). Labels are bounded enums only: never user
 * ids, numbers or IPs (per-user labels leak memory and privacy).
 */
export class HubMetrics {
  readonly registry = new Registry();
  readonly socketsConnected: Gauge;
  readonly callsEnded: Counter;
  readonly callSetupSeconds: Histogram;
  readonly callDurationSeconds: Histogram;
  readonly httpRequests: Counter;

  constructor(hubId: string) {
    this.registry.setDefaultLabels({ hub: hubId });
    collectDefaultMetrics({ register: this.registry, prefix: 'callhub_hub_' });
    this.socketsConnected = new Gauge({ name: 'callhub_sockets_connected', help: 'Authenticated sockets on this hub', registers: [this.registry] });
    this.callsEnded = new Counter({
      name: 'callhub_calls_ended_total', help: 'Calls and conference legs ended, by kind, disposition and media path',
      labelNames: ['kind', 'disposition', 'media_path'], registers: [this.registry],
    });
    this.callSetupSeconds = new Histogram({
      name: 'callhub_call_setup_seconds', help: 'Time from invite to answer of answered calls',
      buckets: [0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60], registers: [this.registry],
    });
    this.callDurationSeconds = new Histogram({
      name: 'callhub_call_duration_seconds', help: 'Billable duration of answered calls',
      buckets: [5, 15, 30, 60, 120, 300, 600, 1800, 3600], registers: [this.registry],
    });
    this.httpRequests = new Counter({
      name: 'callhub_http_requests_total', help: 'HTTP requests by route pattern and status class',
      labelNames: ['route', 'status'], registers: [this.registry],
    });
  }

  /** Subscribes to the hub's facts and hooks; called once at startup. */
  attach(ctx: HubContext): void {
    ctx.gateway.onConnect(() => this.socketsConnected.inc());
    ctx.gateway.onDisconnect(() => this.socketsConnected.dec());
    ctx.events.on('call:ended', (fact) => {
      this.callsEnded.inc({ kind: fact.kind, disposition: fact.disposition, media_path: fact.mediaPath });
      if (fact.answeredAt !== undefined) {
        this.callSetupSeconds.observe((fact.answeredAt - fact.createdAt) / 1000);
        this.callDurationSeconds.observe((fact.endedAt - fact.answeredAt) / 1000);
      }
    });
    ctx.app.addHook('onResponse', async (request, reply) => {
      // The route pattern (e.g. /v1/me/devices/:deviceId), never the raw URL.
      const route = request.routeOptions.url ?? 'unmatched';
      this.httpRequests.inc({ route, status: `${Math.floor(reply.statusCode / 100)}xx` });
    });
  }
}
