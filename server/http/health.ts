import type { HubContext } from '../HubContext.js';

/**
 * Liveness (`/livez`: the process answers) and readiness (`/healthz`: Redis
 * answers and every registered dependency, such as the relay directory, is
 * usable). Load balancers route only to a hub whose /healthz is 200.
 */
export function registerHealthRoutes(ctx: HubContext): void {
  ctx.app.get('/livez', async () => ({ ok: true }));

  ctx.app.get('/healthz', async (_request, reply) => {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    const entries = [['redis', async () => { await ctx.redis.ping(); return undefined; }] as const, ...ctx.healthChecks.entries()];
    await Promise.all(entries.map(async ([name, check]) => {
      try {
        const detail = await withTimeout(check(), 2000);
        checks[name] = detail ? { ok: true, detail } : { ok: true };
      } catch (err) {
        checks[name] = { ok: false, detail: err instanceof Error ? err.message : String(err) };
      }
    }));
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ ok, hubId: ctx.hubId, checks });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e instanceof Error ? e : new Error(String(e))); });
  });
}
