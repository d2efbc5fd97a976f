import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A code the hub delivered, as the SMS/voice gateway received it. */
export interface ReceivedCode {
  to: string;
  channel: string;
  code: string;
  locale: string;
  deliveryId: string;
  timestamp: number;
  /** The JSON body's field names, as sent. */
  fields: string[];
}

/**
 * A real HTTP server standing in for the SMS/voice gateway of the webhook
 * code provider. It checks each request the way docs/protocol/identity.md
 * tells gateways to (HMAC-SHA256 over `<timestamp>.<body>`, fresh timestamp),
 * answers 401 to bad signatures, and keeps the codes it accepted so tests can
 * read the code "sent" to a number. It can also fail or stall the next
 * requests to exercise the provider's retry and timeout.
 */
export class WebhookReceiver {
  readonly secret: string;
  readonly received: ReceivedCode[] = [];
  /** Requests refused for a bad or missing signature or a stale timestamp. */
  rejected = 0;
  /** Every request that reached the server, including failed and refused ones. */
  requests = 0;
  /** The delivery-id header of every request, in arrival order (retries repeat it). */
  readonly deliveryIds: string[] = [];
  readonly #server: Server;
  readonly #waiters: { to: string; after: number; resolve: (c: ReceivedCode) => void }[] = [];
  readonly #faults: ({ kind: 'status'; status: number } | { kind: 'stall'; ms: number })[] = [];
  readonly #stalls = new Set<NodeJS.Timeout>();
  #closed?: Promise<void>;

  private constructor(server: Server, secret: string) {
    this.#server = server;
    this.secret = secret;
  }

  static async start(opts: { secret?: string } = {}): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server, opts.secret ?? randomBytes(24).toString('hex'));
    server.on('request', (req, res) => receiver.#onRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/otp`;
  }

  /** Hub env overrides that point the webhook provider here. */
  hubEnv(): Record<string, string> {
    return { OTP_PROVIDER: 'webhook', OTP_WEBHOOK_URL: this.url, OTP_WEBHOOK_SECRET: this.secret };
  }

  /** Answers the next `count` requests with `status` instead of accepting them. */
  failNext(count: number, status = 503): void {
    for (let i = 0; i < count; i++) this.#faults.push({ kind: 'status', status });
  }

  /** Holds the next `count` requests for `ms` before accepting them (to trip the sender's timeout). */
  stallNext(count: number, ms: number): void {
    for (let i = 0; i < count; i++) this.#faults.push({ kind: 'stall', ms });
  }

  /** Codes accepted for a number so far. */
  codesFor(to: string): ReceivedCode[] {
    return this.received.filter((c) => c.to === to);
  }

  /** The latest code for a number; waits (up to timeoutMs) for one after the first `after` codes. */
  waitForCode(to: string, opts: { after?: number; timeoutMs?: number } = {}): Promise<ReceivedCode> {
    const after = opts.after ?? 0;
    const have = this.codesFor(to);
    if (have.length > after) return Promise.resolve(have[have.length - 1]!);
    return new Promise((resolve, reject) => {
      const waiter = { to, after, resolve: (c: ReceivedCode) => { clearTimeout(timer); resolve(c); } };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error('no code arrived at the webhook receiver'));
      }, opts.timeoutMs ?? 5000);
      this.#waiters.push(waiter);
    });
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      for (const t of this.#stalls) clearTimeout(t);
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
    return this.#closed;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    this.deliveryIds.push(String(req.headers['x-callhub-delivery'] ?? ''));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fault = this.#faults.shift();
      if (fault?.kind === 'status') {
        res.writeHead(fault.status).end();
        return;
      }
      const finish = () => this.#accept(req, Buffer.concat(chunks).toString('utf8'), res);
      if (fault?.kind === 'stall') {
        const t = setTimeout(() => {
          this.#stalls.delete(t);
          if (!res.destroyed) finish();
        }, fault.ms);
        this.#stalls.add(t);
      } else {
        finish();
      }
    });
  }

  #accept(req: IncomingMessage, body: string, res: ServerResponse): void {
    const timestamp = String(req.headers['x-callhub-timestamp'] ?? '');
    const signature = String(req.headers['x-callhub-signature'] ?? '');
    const expected = `sha256=${createHmac('sha256', this.secret).update(`${timestamp}.${body}`).digest('hex')}`;
    const fresh = /^\d+$/.test(timestamp) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
    const valid = signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/json' || !valid || !fresh) {
      this.rejected += 1;
      res.writeHead(401).end();
      return;
    }
    const msg = JSON.parse(body) as { to: string; channel: string; code: string; locale: string };
    const code: ReceivedCode = {
      to: msg.to, channel: msg.channel, code: msg.code, locale: msg.locale, fields: Object.keys(msg).sort(),
      deliveryId: String(req.headers['x-callhub-delivery'] ?? ''), timestamp: Number(timestamp),
    };
    this.received.push(code);
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}');
    for (const w of [...this.#waiters]) {
      if (w.to === code.to && this.codesFor(w.to).length > w.after) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(code);
      }
    }
  }
}
