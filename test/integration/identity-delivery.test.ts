import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { AppError } from '../../shared/protocol/errors.js';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import { createLogger, type Logger } from '../../shared/runtime/log.js';
import { CodeDeliveryError, type CodeDelivery, type CodeMessage } from '../../server/identity/CodeDelivery.js';
import { LogCodeDelivery } from '../../server/identity/LogCodeDelivery.js';
import { WebhookCodeDelivery } from '../../server/identity/WebhookCodeDelivery.js';
import { createCodeDelivery } from '../../server/identity/createCodeDelivery.js';
import { testHubConfig, testHubEnv } from '../support/config.js';
import { startTestHub } from '../support/hub.js';
import { spawnTracked, stopProcess } from '../support/processes.js';
import { TestRedis } from '../support/redis.js';
import { api, errorCode, validTestPhone } from '../support/signup.js';
import { WebhookReceiver } from '../support/webhookReceiver.js';

const silent = createLogger({ level: 'silent', name: 'test' });

/** A pino logger writing JSON lines into an array. */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  return { log: pino({ level: 'info' }, stream), lines };
}

/**
 * The two code providers behind one interface, run through one contract
 * suite; then the webhook's signing, retry, timeout and failure handling, and
 * the production guard on the log provider.
 */
describe('identity: code delivery providers', () => {
  let receiver: WebhookReceiver;

  before(async () => {
    receiver = await WebhookReceiver.start();
  });
  after(async () => {
    await receiver?.close();
  });

  interface ProviderCase {
    name: string;
    make(): CodeDelivery;
    /** The code as the receiving side saw it. */
    seen(msg: CodeMessage): Promise<string | undefined>;
  }

  let captured = capturingLogger();
  const providers: ProviderCase[] = [
    {
      name: 'log',
      make: () => {
        captured = capturingLogger();
        return new LogCodeDelivery(captured.log);
      },
      seen: async (msg) => {
        const line = captured.lines.find((l) => l.includes(msg.code));
        // The log shows the code but never the full number.
        if (line) expect(line).not.to.contain(msg.to);
        return line ? msg.code : undefined;
      },
    },
    {
      name: 'webhook',
      make: () => new WebhookCodeDelivery({ url: receiver.url, secret: receiver.secret, timeoutMs: 2000, retries: 1, log: silent }),
      seen: async (msg) => receiver.codesFor(msg.to).at(-1)?.code,
    },
  ];

  for (const p of providers) {
    describe(`contract: ${p.name}`, () => {
      it('delivers a code to the number', async () => {
        const provider = p.make();
        const msg: CodeMessage = { to: validTestPhone(), channel: 'sms', code: '482913', locale: 'en' };
        await provider.send(msg);
        expect(await p.seen(msg)).to.equal('482913');
        provider.close();
      });

      it('refuses to send after close (close is idempotent)', async () => {
        const provider = p.make();
        provider.close();
        provider.close();
        let failed = false;
        await provider.send({ to: validTestPhone(), channel: 'voice', code: '111111', locale: 'en' }).catch(() => { failed = true; });
        expect(failed).to.equal(true);
      });
    });
  }

  describe('webhook', () => {
    const make = (over: Partial<ConstructorParameters<typeof WebhookCodeDelivery>[0]> = {}) =>
      new WebhookCodeDelivery({ url: receiver.url, secret: receiver.secret, timeoutMs: 2000, retries: 2, backoffMs: 20, log: silent, ...over });

    it('posts exactly { to, channel, code, locale }, signed and timestamped, accepted by a verifying receiver', async () => {
      const to = validTestPhone();
      const rejected = receiver.rejected;
      await make().send({ to, channel: 'voice', code: '000123', locale: 'de' });
      expect(receiver.rejected).to.equal(rejected);
      const got = receiver.codesFor(to).at(-1)!;
      expect(got).to.include({ to, channel: 'voice', code: '000123', locale: 'de' });
      expect(got.fields).to.deep.equal(['channel', 'code', 'locale', 'to']);
      expect(Math.abs(got.timestamp - Date.now() / 1000)).to.be.lessThan(60);
    });

    it('a receiver with another secret refuses the signature; the provider does not retry a 401', async () => {
      const other = await WebhookReceiver.start();
      try {
        const provider = make({ url: other.url, secret: 'not-the-receivers-secret-0123' });
        const err = await provider.send({ to: validTestPhone(), channel: 'sms', code: '123456', locale: 'en' }).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(CodeDeliveryError);
        expect((err as CodeDeliveryError).attempts).to.equal(1);
        expect(other.rejected).to.equal(1);
        expect(other.received).to.have.length(0);
      } finally {
        await other.close();
      }
    });

    it('retries 5xx with backoff under one delivery id, then succeeds', async () => {
      const to = validTestPhone();
      const before = receiver.requests;
      receiver.failNext(2, 503);
      await make().send({ to, channel: 'sms', code: '654321', locale: 'en' });
      expect(receiver.requests - before).to.equal(3);
      expect(receiver.codesFor(to)).to.have.length(1);
      const ids = receiver.deliveryIds.slice(before);
      expect(new Set(ids).size).to.equal(1);
      expect(ids[0]).to.equal(receiver.codesFor(to)[0]!.deliveryId);
    });

    it('gives up after the configured retries', async () => {
      const before = receiver.requests;
      receiver.failNext(3, 500);
      const err = await make({ retries: 2 }).send({ to: validTestPhone(), channel: 'sms', code: '654321', locale: 'en' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(CodeDeliveryError);
      expect((err as CodeDeliveryError).attempts).to.equal(3);
      expect(receiver.requests - before).to.equal(3);
    });

    it('does not retry a 400 from the gateway', async () => {
      const before = receiver.requests;
      receiver.failNext(1, 400);
      const err = await make().send({ to: validTestPhone(), channel: 'sms', code: '654321', locale: 'en' }).catch((e: unknown) => e);
      expect((err as CodeDeliveryError).attempts).to.equal(1);
      expect(receiver.requests - before).to.equal(1);
    });

    it('times out a stalled gateway and retries', async () => {
      const to = validTestPhone();
      receiver.stallNext(1, 1500);
      await make({ timeoutMs: 200, retries: 1 }).send({ to, channel: 'sms', code: '777777', locale: 'en' });
      // The stalled attempt may still land later; the retry did land.
      expect(receiver.codesFor(to).map((c) => c.code)).to.include('777777');
    });

    it('close() aborts a send waiting on a stalled gateway', async () => {
      receiver.stallNext(1, 3000);
      const provider = make({ timeoutMs: 5000, retries: 3 });
      const pending = provider.send({ to: validTestPhone(), channel: 'sms', code: '888888', locale: 'en' }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      provider.close();
      const err = await pending;
      expect(err).to.be.instanceOf(CodeDeliveryError);
      expect((err as CodeDeliveryError).attempts).to.equal(1);
    });
  });

  describe('through the hub', () => {
    let redis: TestRedis;
    let hub: Hub;

    before(async () => {
      redis = await TestRedis.start();
      hub = await startTestHub(redis.url, { ...receiver.hubEnv(), OTP_WEBHOOK_RETRIES: '1', OTP_RESEND_COOLDOWN_S: '60' });
    });
    after(async () => {
      await hub?.close();
      await redis?.stop();
    });

    it('answers CODE_DELIVERY_FAILED when the gateway fails, leaves no pending code and no cooldown', async () => {
      const phone = validTestPhone();
      receiver.failNext(2, 502);
      const res = await api(hub, 'POST', '/v1/auth/code', { body: { phone } });
      expect(res.status).to.equal(502);
      expect(errorCode(res)).to.equal('CODE_DELIVERY_FAILED');
      const store = redis.client();
      try {
        expect(await store.exists(keys.otp(hub.ctx.phoneHasher.hash(phone)))).to.equal(0);
      } finally {
        store.disconnect();
      }
      // The user may ask again at once (the cooldown was released) and this time it arrives.
      const again = await api(hub, 'POST', '/v1/auth/code', { body: { phone } });
      expect(again.status).to.equal(200);
      expect(receiver.codesFor(phone)).to.have.length(1);
    });
  });

  describe('startup guard', () => {
    it('createCodeDelivery refuses the log provider in production and a webhook without URL or secret', () => {
      const prod = testHubConfig('redis://127.0.0.1:1', { NODE_ENV: 'production', OTP_PROVIDER: 'log' });
      expect(() => createCodeDelivery(prod, silent)).to.throw(TypeError, /production/);
      const noUrl = testHubConfig('redis://127.0.0.1:1', { OTP_PROVIDER: 'webhook' });
      expect(() => createCodeDelivery(noUrl, silent)).to.throw(TypeError, /OTP_WEBHOOK_URL/);
      const dev = testHubConfig('redis://127.0.0.1:1', { NODE_ENV: 'development', OTP_PROVIDER: 'log' });
      const provider = createCodeDelivery(dev, silent);
      expect(provider.name).to.equal('log');
      provider.close();
      expect(new AppError('CODE_DELIVERY_FAILED').status).to.equal(502);
    });

    it('a hub process with NODE_ENV=production and OTP_PROVIDER=log refuses to start', async () => {
      const redis = await TestRedis.start();
      try {
        const env = { ...process.env, ...testHubEnv(redis.url, { NODE_ENV: 'production', OTP_PROVIDER: 'log', LOG_LEVEL: 'silent' }) };
        const child = spawnTracked(process.execPath, ['--import', 'tsx', 'server/main.ts'], { env });
        let stderr = '';
        let stdout = '';
        child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
        child.stdout?.on('data', (c: Buffer) => { stdout += c.toString(); });
        const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
        await stopProcess(child);
        expect(exitCode).to.not.equal(0);
        expect(stdout).not.to.contain('HUB_READY');
        expect(stderr).to.match(/OTP_PROVIDER=log .*production/);
      } finally {
        await redis.stop();
      }
    });
  });
});
