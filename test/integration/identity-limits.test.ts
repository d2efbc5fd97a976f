import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { WebhookReceiver } from '../support/webhookReceiver.js';
import { identityFixture, type IdentityFixture } from '../support/fixtures.js';
import { api, errorCode, testIp, validTestPhone, type ApiResponse } from '../support/signup.js';

interface LimitError { error: { code: string; retryAfter: number; details: { limit: string } } }

/**
 * Every send and verify limit: per number, per client IP, per number prefix
 * (SMS pumping) and verifications per IP, each answered with 429 and a
 * Retry-After that matches the body. Limits are small here; each test keeps
 * to its own numbers, IPs and prefix blocks so they do not meet.
 */
describe('identity: rate limits', () => {
  let receiver: WebhookReceiver;
  let hub: Hub;
  let fixture: IdentityFixture | undefined;

  before(async () => {
    fixture = await identityFixture({
      TRUST_PROXY: 'true',
      OTP_RESEND_COOLDOWN_S: '0',
      OTP_PER_NUMBER_PER_HOUR: '2',
      OTP_PER_IP_PER_HOUR: '3',
      OTP_PER_PREFIX_PER_HOUR: '4',
      OTP_PREFIX_DIGITS: '6',
      OTP_VERIFY_PER_IP_PER_HOUR: '3',
    });
    ({ receiver, hub } = fixture);
  });
  after(() => fixture?.stop());

  const code = (phone: string, ip: string) => api<LimitError>(hub, 'POST', '/v1/auth/code', { body: { phone }, ip });

  function expectLimited(res: ApiResponse<LimitError>, limit: string): void {
    expect(res.status, JSON.stringify(res.body)).to.equal(429);
    expect(errorCode(res)).to.equal('RATE_LIMITED');
    expect(res.body.error.details.limit).to.equal(limit);
    const header = Number(res.headers.get('retry-after'));
    expect(header).to.be.within(1, 3600);
    expect(res.body.error.retryAfter).to.equal(header);
  }

  it('limits codes per number, whatever the client IP', async () => {
    const phone = validTestPhone('10');
    expect((await code(phone, testIp())).status).to.equal(200);
    expect((await code(phone, testIp())).status).to.equal(200);
    const third = await code(phone, testIp());
    expectLimited(third, 'number');
    expect(receiver.codesFor(phone)).to.have.length(2);
  });

  it('limits codes per client IP, whatever the number; a refusal does not use up the number\'s own budget', async () => {
    const ip = testIp();
    for (const block of ['20', '21', '22']) expect((await code(validTestPhone(block), ip)).status).to.equal(200);
    const refusedNumber = validTestPhone('23');
    expectLimited(await code(refusedNumber, ip), 'ip');
    expect(receiver.codesFor(refusedNumber)).to.have.length(0);
    // Another IP is served, and the refused number still has its full per-number budget of 2.
    expect((await code(refusedNumber, testIp())).status).to.equal(200);
    expect((await code(refusedNumber, testIp())).status).to.equal(200);
    expectLimited(await code(refusedNumber, testIp()), 'number');
  });

  it('limits codes per number prefix (SMS-pumping defence) across numbers and IPs', async () => {
    const block = '30';
    for (let i = 0; i < 4; i++) expect((await code(validTestPhone(block), testIp())).status).to.equal(200);
    const pumped = validTestPhone(block);
    expectLimited(await code(pumped, testIp()), 'prefix');
    expect(receiver.codesFor(pumped)).to.have.length(0);
    // A number under another prefix goes through.
    expect((await code(validTestPhone('31'), testIp())).status).to.equal(200);
  });

  it('limits verification attempts per client IP', async () => {
    const ip = testIp();
    for (let i = 0; i < 3; i++) {
      const res = await api(hub, 'POST', '/v1/auth/verify', { body: { phone: validTestPhone('40'), code: '123456', device: { platform: 'ios' } }, ip });
      expect(errorCode(res)).to.equal('CODE_EXPIRED');
    }
    const res = await api<LimitError>(hub, 'POST', '/v1/auth/verify', { body: { phone: validTestPhone('41'), code: '123456', device: { platform: 'ios' } }, ip });
    expectLimited(res, 'verify_ip');
    // Another IP can still verify.
    const other = await api(hub, 'POST', '/v1/auth/verify', { body: { phone: validTestPhone('41'), code: '123456', device: { platform: 'ios' } }, ip: testIp() });
    expect(errorCode(other)).to.equal('CODE_EXPIRED');
  });
});
