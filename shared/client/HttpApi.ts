import type { z } from 'zod';
import type { HttpRouteSpec } from '../protocol/identity.js';
import { ClientError } from './ClientError.js';

export type RouteBody<R extends HttpRouteSpec> = R['request'] extends z.ZodTypeAny ? z.input<R['request']> : undefined;
export type RouteReply<R extends HttpRouteSpec> = z.output<R['response']>;

export type FetchLike = (input: string, init?: {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}) => Promise<{ status: number; ok: boolean; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/**
 * JSON over HTTP to the hub's `/v1` API: one place that sets headers, applies
 * a timeout and turns `{ ok: false, error }` bodies (and network failures)
 * into `ClientError`s with stable codes.
 */
export class HttpApi {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchFn: FetchLike,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Calls a route of the shared HTTP protocol (`identityRoutes`, `contactsRoutes`, ...):
   * method, path and types come from its spec; `:param`s are filled from `params`.
   */
  route<R extends HttpRouteSpec>(spec: R, body: RouteBody<R>, opts: { accessToken?: string; params?: Record<string, string> } = {}): Promise<RouteReply<R>> {
    const path = spec.path.replace(/:([A-Za-z]+)/g, (_m, name: string) => {
      const value = opts.params?.[name];
      if (value === undefined) throw new TypeError(`${spec.path}: missing path parameter ${name}`);
      return encodeURIComponent(value);
    });
    return this.send<RouteReply<R>>(spec.method, path, spec.request ? body : undefined, opts.accessToken);
  }

  async send<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, accessToken?: string): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    const timer = setTimeout(() => controller?.abort(), this.timeoutMs);
    let res;
    try {
      const init: Parameters<FetchLike>[1] = { method, headers };
      if (body !== undefined) init.body = JSON.stringify(body);
      if (controller) init.signal = controller.signal;
      res = await this.fetchFn(`${this.baseUrl}${path}`, init);
    } catch (err) {
      const aborted = controller?.signal.aborted === true;
      throw new ClientError(aborted ? 'TIMEOUT' : 'NETWORK', aborted ? `${method} ${path} timed out` : `${method} ${path} failed: ${String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new ClientError('INTERNAL', `${method} ${path}: the hub answered ${res.status} with a body that is not JSON`, { status: res.status });
    }
    const obj = (parsed ?? {}) as { ok?: boolean; error?: { code?: string; message?: string; retryAfter?: number } };
    if (!res.ok || obj.ok === false) {
      const err = ClientError.fromBody(obj.error as never, res.status);
      if (err.retryAfter === undefined) {
        const header = Number(res.headers.get('retry-after'));
        if (Number.isFinite(header) && header > 0) return Promise.reject(new ClientError(err.code, err.message, { status: res.status, retryAfter: header, details: err.details }));
      }
      throw err;
    }
    return parsed as T;
  }
}
