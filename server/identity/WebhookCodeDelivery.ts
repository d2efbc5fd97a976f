import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/runtime/log.js';
import { CodeDeliveryError, type CodeDelivery, type CodeMessage } from './CodeDelivery.js';

export interface WebhookCodeDeliveryOptions {
  /** Gateway URL (http or https) that receives `POST { to, channel, code, locale }`. */
  url: string;
  /** HMAC-SHA256 key of the signature header (at least 16 characters). */
  secret: string;
  /** Timeout of one attempt, ms. */
  timeoutMs: number;
  /** Extra attempts after a retryable failure. */
  retries: number;
  /** First backoff delay, ms (doubles each retry, capped at 5 s). Default 200. */
  backoffMs?: number;
  log: Logger;
}

export const SIGNATURE_HEADER = 'x-callhub-signature';
export const TIMESTAMP_HEADER = 'x-callhub-timestamp';
export const DELIVERY_HEADER = 'x-callhub-delivery';

/**
 * The signature a receiver recomputes: `sha256=` + hex HMAC-SHA256 over
 * `<timestamp>.<raw body>`. Binding the timestamp lets receivers refuse
 * replays older than a few minutes.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Production provider: POSTs each code as JSON to an SMS/voice gateway,
 * signed, with a per-attempt timeout and bounded retries with exponential
 * backoff. Retries only what may succeed later (network errors, timeouts,
 * 408, 429, 5xx); one delivery id spans the attempts so the gateway can
 * deduplicate.
 */
export class WebhookCodeDelivery implements CodeDelivery {
  readonly name = 'webhook' as const;
  readonly #opts: Required<WebhookCodeDeliveryOptions>;
  readonly #closing = new AbortController();
  #closed = false;

  constructor(opts: WebhookCodeDeliveryOptions) {
    const url = new URL(opts.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('OTP_WEBHOOK_URL must be http(s)');
    if (opts.secret.length < 16) throw new TypeError('OTP_WEBHOOK_SECRET must be at least 16 characters');
    if (!Number.isInteger(opts.retries) || opts.retries < 0) throw new TypeError('retries must be a non-negative integer');
    this.#opts = { backoffMs: 200, ...opts };
  }

  async send(message: CodeMessage): Promise<void> {
    if (this.#closed) throw new CodeDeliveryError('code delivery is closed', 0);
    const body = JSON.stringify({ to: message.to, channel: message.channel, code: message.code, locale: message.locale });
    const deliveryId = randomUUID();
    const attempts = this.#opts.retries + 1;
    let lastProblem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        const delay = Math.min(this.#opts.backoffMs * 2 ** (attempt - 2), 5000) * (0.8 + Math.random() * 0.4);
        try {
          await sleep(delay, undefined, { signal: this.#closing.signal });
        } catch {
          throw new CodeDeliveryError('code delivery closed during backoff', attempt - 1);
        }
      }
      const outcome = await this.#attempt(body, deliveryId);
      if (outcome.ok) return;
      lastProblem = outcome.problem;
      this.#opts.log.warn({ attempt, attempts, deliveryId, problem: outcome.problem }, 'code webhook attempt failed');
      if (!outcome.retryable || this.#closed) throw new CodeDeliveryError(outcome.problem, attempt);
    }
    throw new CodeDeliveryError(lastProblem, attempts);
  }

  async #attempt(body: string, deliveryId: string): Promise<{ ok: true } | { ok: false; retryable: boolean; problem: string }> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.#opts.timeoutMs)]);
    try {
      const res = await fetch(this.#opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhook(this.#opts.secret, timestamp, body),
          [DELIVERY_HEADER]: deliveryId,
        },
        body,
        signal,
        redirect: 'error',
      });
      // Drain the body so the connection can be reused; its content is not needed.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true };
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      return { ok: false, retryable, problem: `gateway answered ${res.status}` };
    } catch (err) {
      if (this.#closing.signal.aborted) return { ok: false, retryable: false, problem: 'code delivery closed' };
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      return { ok: false, retryable: true, problem: timedOut ? `no answer within ${this.#opts.timeoutMs} ms` : 'gateway unreachable' };
    }
  }

  /** Aborts in-flight requests and pending backoffs. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
  }
}
