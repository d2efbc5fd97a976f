import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import type { WebhookReceiver } from '../support/webhookReceiver.js';
import { identityFixture, type IdentityFixture } from '../support/fixtures.js';
import { api, errorCode, signUp, testIp, validTestPhone, type ApiOptions } from '../support/signup.js';
import { snapshot } from '../support/redisScan.js';

/**
 * Bad input at the HTTP boundary: wrong types, unknown fields, oversized and
 * malformed bodies, refused numbers. Each gets a stable code and leaves Redis
 * exactly as it was (and sends no code).
 */
describe('identity: bad input', () => {
  let store: Redis;
  let receiver: WebhookReceiver;
  let hub: Hub;
  let fixture: IdentityFixture | undefined;

  before(async () => {
    fixture = await identityFixture({ TRUST_PROXY: 'true', HTTP_BODY_LIMIT: '2048', OTP_RESEND_COOLDOWN_S: '0', PHONE_COUNTRIES: 'GB,FR,US' });
    ({ store, receiver, hub } = fixture);
  });
  after(() => fixture?.stop());

  /** Calls, expects the code and status, and checks that nothing changed and nothing was sent. */
  async function refused(method: string, path: string, opts: ApiOptions, code: string, status: number): Promise<void> {
    const before = await snapshot(store);
    const sent = receiver.received.length;
    const res = await api(hub, method, path, { ip: testIp(), ...opts });
    expect(res.status, `${path} ${JSON.stringify(opts.body ?? opts.rawBody)?.slice(0, 80)}: ${JSON.stringify(res.body)}`).to.equal(status);
    expect(errorCode(res)).to.equal(code);
    expect((res.body as { ok: boolean }).ok).to.equal(false);
    expect(await snapshot(store)).to.deep.equal(before);
    expect(receiver.received.length).to.equal(sent);
  }

  it('wrong types and missing fields', async () => {
    const phone = validTestPhone();
    const bodies: unknown[] = [
      { phone: 447400123456 }, { phone, channel: 'fax' }, { phone, channel: 1 }, {}, { phone: null }, { phone: ['+447400123456'] },
      { phone, locale: 'not a locale!' }, [phone], 'just a string', 42,
    ];
    for (const body of bodies) await refused('POST', '/v1/auth/code', { body }, 'VALIDATION_FAILED', 400);
    const verifyBodies: unknown[] = [
      { phone, code: 123456, device: { platform: 'ios' } }, { phone, code: '12345', device: { platform: 'ios' } },
      { phone, code: '12345a', device: { platform: 'ios' } }, { phone, code: '123456' }, { phone, code: '123456', device: { platform: 'nokia' } },
      { phone, code: '123456', device: { platform: 'ios' }, age: '12' }, { phone, code: '123456', device: { platform: 'ios' }, age: 12.5 },
      { phone, code: '123456', device: { platform: 'ios' }, displayName: '' },
    ];
    for (const body of verifyBodies) await refused('POST', '/v1/auth/verify', { body }, 'VALIDATION_FAILED', 400);
    for (const body of [{}, { refreshToken: 5 }, { refreshToken: '' }, { refreshToken: 'x'.repeat(600) }]) {
      await refused('POST', '/v1/auth/refresh', { body }, 'VALIDATION_FAILED', 400);
    }
  });

  it('unknown fields, also nested, are refused', async () => {
    const phone = validTestPhone();
    await refused('POST', '/v1/auth/code', { body: { phone, channel: 'sms', admin: true } }, 'VALIDATION_FAILED', 400);
    await refused('POST', '/v1/auth/verify', { body: { phone, code: '123456', device: { platform: 'ios', jailbroken: true } } }, 'VALIDATION_FAILED', 400);
    await refused('POST', '/v1/auth/refresh', { body: { refreshToken: 'rt1.a.b.c', userId: 'u1' } }, 'VALIDATION_FAILED', 400);
    const user = await signUp(hub, receiver);
    await refused('POST', '/v1/auth/logout', { token: user.accessToken, body: { everywhere: true } }, 'VALIDATION_FAILED', 400);
    expect((await api(hub, 'GET', '/v1/me', { token: user.accessToken })).status).to.equal(200);
  });

  it('oversized, malformed, non-JSON and prototype-polluting bodies', async () => {
    const phone = validTestPhone();
    await refused('POST', '/v1/auth/code', { body: { phone, pad: 'x'.repeat(4096) } }, 'PAYLOAD_TOO_LARGE', 413);
    await refused('POST', '/v1/auth/code', { rawBody: '{"phone": "+447400123456",' }, 'BAD_REQUEST', 400);
    await refused('POST', '/v1/auth/code', { rawBody: '' }, 'BAD_REQUEST', 400);
    await refused('POST', '/v1/auth/code', { rawBody: `phone=${phone}`, contentType: 'application/x-www-form-urlencoded' }, 'BAD_REQUEST', 400);
    // Fastify reads text/plain as a string, which no schema here accepts.
    await refused('POST', '/v1/auth/code', { rawBody: phone, contentType: 'text/plain' }, 'VALIDATION_FAILED', 400);
    await refused('POST', '/v1/auth/code', { rawBody: `{"phone":"${phone}","__proto__":{"admin":true}}` }, 'BAD_REQUEST', 400);
  });

  it('invalid numbers', async () => {
    for (const phone of ['+447700900123', '+441234', 'abcdefg', '07400123456', '+44 7400 123456 ext. 12', 'call +447400123456', '+999123456789', '+12']) {
      await refused('POST', '/v1/auth/code', { body: { phone } }, 'PHONE_INVALID', 400);
      await refused('POST', '/v1/auth/verify', { body: { phone, code: '123456', device: { platform: 'ios' } } }, 'PHONE_INVALID', 400);
    }
  });

  it('premium-rate and shared-cost numbers', async () => {
    for (const phone of ['+449098765432', '+448451234567', '+33890123456']) {
      await refused('POST', '/v1/auth/code', { body: { phone } }, 'PHONE_TYPE_REFUSED', 400);
    }
    for (const phone of ['+33810123456', '+33820123456']) {
      await refused('POST', '/v1/auth/code', { body: { phone } }, 'PHONE_TYPE_REFUSED', 400);
    }
  });

  it('numbers outside the country allow-list (PHONE_COUNTRIES=GB,FR,US)', async () => {
    for (const phone of ['+4915123456789', '+35391123456', '+80012345678']) {
      await refused('POST', '/v1/auth/code', { body: { phone } }, 'COUNTRY_NOT_ALLOWED', 400);
    }
    // An allowed country works.
    expect((await api(hub, 'POST', '/v1/auth/code', { body: { phone: '+33612345678' }, ip: testIp() })).status).to.equal(200);
  });

  it('unknown routes and methods', async () => {
    await refused('GET', '/v1/auth/code', {}, 'NOT_FOUND', 404);
    await refused('POST', '/v1/nope', { body: {} }, 'NOT_FOUND', 404);
  });
});
