import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import type { TestRedis } from '../support/redis.js';
import { connectSocket, nextEvent, request, startTestHub } from '../support/hub.js';
import type { WebhookReceiver } from '../support/webhookReceiver.js';
import { identityFixture, type IdentityFixture } from '../support/fixtures.js';
import { api, errorCode, signUp, testIp, validTestPhone } from '../support/signup.js';
import { connectUser } from '../support/users.js';

/** Sign-up by code through the webhook provider, sessions, refresh rotation and reuse, logout, token checks. */
describe('identity: sign-up, sessions and tokens', () => {
  let redis: TestRedis;
  let store: Redis;
  let receiver: WebhookReceiver;
  let hub: Hub;
  let fixture: IdentityFixture | undefined;

  before(async () => {
    fixture = await identityFixture({
      TRUST_PROXY: 'true',
      OTP_RESEND_COOLDOWN_S: '0',
      OTP_PER_NUMBER_PER_HOUR: '50',
      OTP_PER_PREFIX_PER_HOUR: '100000',
      REFRESH_PER_SESSION_PER_HOUR: '30',
    });
    ({ redis, store, receiver, hub } = fixture);
  });
  after(() => fixture?.stop());

  async function sendCode(phone: string, ip = testIp()) {
    const before = receiver.codesFor(phone).length;
    const res = await api(hub, 'POST', '/v1/auth/code', { body: { phone, channel: 'sms' }, ip });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return (await receiver.waitForCode(phone, { after: before })).code;
  }

  function verify(phone: string, code: string, extra: Record<string, unknown> = {}) {
    return api<Record<string, unknown>>(hub, 'POST', '/v1/auth/verify', { body: { phone, code, device: { platform: 'android' }, ...extra }, ip: testIp() });
  }

  it('signs up through the webhook provider: signed delivery, tokens, profile, newUser', async () => {
    const phone = validTestPhone();
    const rejectedBefore = receiver.rejected;
    const sent = await api(hub, 'POST', '/v1/auth/code', { body: { phone, channel: 'voice', locale: 'pt-BR' }, ip: testIp() });
    expect(sent.status).to.equal(200);
    expect(sent.body).to.deep.equal({ channel: 'voice', expiresIn: 300, resendAfter: 0, codeLength: 6 });

    const delivered = await receiver.waitForCode(phone);
    expect(receiver.rejected).to.equal(rejectedBefore); // the receiver checked the HMAC signature and accepted it
    expect(delivered).to.include({ to: phone, channel: 'voice', locale: 'pt-BR' });
    expect(delivered.code).to.match(/^\d{6}$/);
    expect(delivered.deliveryId).to.match(/^[0-9a-f-]{36}$/);

    // Only a keyed hash of the code is stored, under the number's keyed hash.
    const pending = await store.hgetall(keys.otp(hub.ctx.phoneHasher.hash(phone)));
    expect(Object.keys(pending).sort()).to.deep.equal(['attempts', 'channel', 'mac', 'sentAt']);
    expect(pending.mac).to.match(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(pending)).not.to.contain(delivered.code);

    const res = await verify(phone, delivered.code, { displayName: 'Ada', device: { platform: 'ios', name: 'Ada phone' } });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const body = res.body as { accessToken: string; refreshToken: string; newUser: boolean; user: { userId: string; phone: string; displayName: string }; device: { deviceId: string; platform: string; name: string } };
    expect(body.newUser).to.equal(true);
    expect(body.user).to.include({ phone, displayName: 'Ada' });
    expect(body.device).to.include({ platform: 'ios', name: 'Ada phone' });
    expect(body.refreshToken).to.be.a('string');

    const decoded = jwt.decode(body.accessToken, { complete: true })!;
    expect(decoded.header).to.include({ alg: 'HS256', kid: 'k1' });
    expect(decoded.payload).to.include({ sub: body.user.userId, iss: 'callhub', aud: 'callhub-clients', did: body.device.deviceId });

    const me = await api<{ user: { userId: string } }>(hub, 'GET', '/v1/me', { token: body.accessToken });
    expect(me.status).to.equal(200);
    expect(me.body.user.userId).to.equal(body.user.userId);
    // The code was single use: it is gone.
    expect(await store.exists(keys.otp(hub.ctx.phoneHasher.hash(phone)))).to.equal(0);
  });

  it('signs the same number in on a second device: same account, newUser false, two sessions', async () => {
    const phone = validTestPhone();
    const first = await signUp(hub, receiver, { phone, name: 'Bo' });
    const second = await signUp(hub, receiver, { phone, name: 'ignored for existing accounts', platform: 'web' });
    expect(second.userId).to.equal(first.userId);
    expect(second.newUser).to.equal(false);
    expect(second.displayName).to.equal('Bo');
    expect(second.sessionId).not.to.equal(first.sessionId);
    expect(await store.hlen(keys.userSessions(first.userId))).to.equal(2);
    expect(await store.hlen(keys.userDevices(first.userId))).to.equal(2);
  });

  it('normalises the typed number (spaces, dashes, 00) to E.164', async () => {
    const phone = validTestPhone();
    const typed = `00 44 ${phone.slice(3, 7)}-${phone.slice(7)}`;
    const res = await api(hub, 'POST', '/v1/auth/code', { body: { phone: typed }, ip: testIp() });
    expect(res.status).to.equal(200);
    const { code } = await receiver.waitForCode(phone);
    const v = await verify(typed, code);
    expect(v.status).to.equal(200);
    expect((v.body.user as { phone: string }).phone).to.equal(phone);
  });

  it('counts wrong codes and burns the code after OTP_MAX_ATTEMPTS; no account is created', async () => {
    const phone = validTestPhone();
    const code = await sendCode(phone);
    const wrong = code === '000000' ? '111111' : '000000';
    for (let left = 4; left >= 1; left--) {
      const res = await verify(phone, wrong);
      expect(res.status).to.equal(400);
      expect(errorCode(res)).to.equal('CODE_INVALID');
      expect((res.body.error as { details: unknown }).details).to.deep.equal({ remainingAttempts: left });
    }
    const fifth = await verify(phone, wrong);
    expect(fifth.status).to.equal(429);
    expect(errorCode(fifth)).to.equal('CODE_ATTEMPTS_EXCEEDED');
    // Even the right code is refused now.
    const right = await verify(phone, code);
    expect(errorCode(right)).to.equal('CODE_ATTEMPTS_EXCEEDED');
    expect(await hub.ctx.accounts.findByPhone(phone)).to.equal(null);

    // A new code works.
    const fresh = await sendCode(phone);
    expect((await verify(phone, fresh)).status).to.equal(200);
  });

  it('a code is single use, and a newer code replaces the older one', async () => {
    const phone = validTestPhone();
    const older = await sendCode(phone);
    const newer = await sendCode(phone);
    if (older !== newer) expect(errorCode(await verify(phone, older))).to.equal('CODE_INVALID');
    expect((await verify(phone, newer)).status).to.equal(200);
    const again = await verify(phone, newer);
    expect(again.status).to.equal(400);
    expect(errorCode(again)).to.equal('CODE_EXPIRED');
  });

  it('a code is single use even when two verifications race', async () => {
    const phone = validTestPhone();
    const code = await sendCode(phone);
    const results = await Promise.all([verify(phone, code), verify(phone, code), verify(phone, code)]);
    expect(results.map((r) => r.status).sort()).to.deep.equal([200, 400, 400]);
    expect(results.filter((r) => r.status === 400).map(errorCode)).to.deep.equal(['CODE_EXPIRED', 'CODE_EXPIRED']);
    expect(await store.hlen(keys.userSessions((await hub.ctx.accounts.findByPhone(phone))!))).to.equal(1);
  });

  it('refuses verification when no code was sent', async () => {
    const res = await verify(validTestPhone(), '123456');
    expect(errorCode(res)).to.equal('CODE_EXPIRED');
  });

  it('codes expire after OTP_TTL_S', async () => {
    const shortHub = await startTestHub(redis.url, { ...receiver.hubEnv(), OTP_TTL_S: '1', OTP_RESEND_COOLDOWN_S: '0' });
    try {
      const phone = validTestPhone();
      const res = await api(shortHub, 'POST', '/v1/auth/code', { body: { phone } });
      expect(res.body).to.include({ expiresIn: 1 });
      const { code } = await receiver.waitForCode(phone);
      await new Promise((r) => setTimeout(r, 1300));
      const late = await api(shortHub, 'POST', '/v1/auth/verify', { body: { phone, code, device: { platform: 'web' } } });
      expect(late.status).to.equal(400);
      expect(errorCode(late)).to.equal('CODE_EXPIRED');
    } finally {
      await shortHub.close();
    }
  });

  it('enforces the resend cooldown with 429 and Retry-After, per number', async () => {
    const coolHub = await startTestHub(redis.url, { ...receiver.hubEnv(), OTP_RESEND_COOLDOWN_S: '30' });
    try {
      const phone = validTestPhone();
      expect((await api(coolHub, 'POST', '/v1/auth/code', { body: { phone } })).status).to.equal(200);
      const delivered = receiver.codesFor(phone).length;
      const again = await api<{ error: { retryAfter: number; details: { limit: string } } }>(coolHub, 'POST', '/v1/auth/code', { body: { phone } });
      expect(again.status).to.equal(429);
      expect(errorCode(again)).to.equal('RATE_LIMITED');
      expect(again.body.error.details.limit).to.equal('cooldown');
      const retryAfter = Number(again.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 30);
      expect(again.body.error.retryAfter).to.equal(retryAfter);
      expect(receiver.codesFor(phone).length).to.equal(delivered);
      // Another number is not held back.
      expect((await api(coolHub, 'POST', '/v1/auth/code', { body: { phone: validTestPhone() } })).status).to.equal(200);
    } finally {
      await coolHub.close();
    }
  });

  it('refresh rotates both tokens; each refresh token works once', async () => {
    const user = await signUp(hub, receiver);
    const r1 = await api<{ accessToken: string; refreshToken: string; refreshTokenExpiresAt: number }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    expect(r1.status).to.equal(200);
    expect(r1.body.refreshToken).not.to.equal(user.refreshToken);
    expect(r1.body.refreshTokenExpiresAt).to.be.greaterThan(Date.now());
    expect((await api(hub, 'GET', '/v1/me', { token: r1.body.accessToken })).status).to.equal(200);
    const r2 = await api<{ refreshToken: string }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: r1.body.refreshToken } });
    expect(r2.status).to.equal(200);
    // Only hashes of refresh tokens are stored.
    const raw = await store.hget(keys.userSessions(user.userId), user.sessionId);
    for (const t of [user.refreshToken, r1.body.refreshToken, r2.body.refreshToken]) {
      expect(raw).not.to.contain(t.split('.').pop());
    }
  });

  it('a reused refresh token revokes that session and closes its socket; other devices stay signed in', async () => {
    const phone = validTestPhone();
    const victim = await signUp(hub, receiver, { phone });
    const otherDevice = await signUp(hub, receiver, { phone });
    const socket = await connectUser(hub, victim);
    const otherSocket = await connectUser(hub, otherDevice);
    try {
      const closing = nextEvent<{ reason: string }>(socket, 'session:closing');
      const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
      const rotated = await api<{ refreshToken: string }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: victim.refreshToken } });
      expect(rotated.status).to.equal(200);

      const reuse = await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: victim.refreshToken } });
      expect(reuse.status).to.equal(401);
      expect(errorCode(reuse)).to.equal('REFRESH_TOKEN_REUSED');
      expect((await closing).reason).to.equal('session_revoked');
      await disconnected;

      // The whole session is gone: the newest refresh token and the access token too.
      expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: rotated.body.refreshToken } }))).to.equal('SESSION_REVOKED');
      expect(errorCode(await api(hub, 'GET', '/v1/me', { token: victim.accessToken }))).to.equal('SESSION_REVOKED');
      expect(await store.hexists(keys.userDevices(victim.userId), victim.deviceId)).to.equal(0);
      const refused = await connectSocket(hub.url, victim.accessToken).catch((e: { data?: { code: string } }) => e);
      expect((refused as { data?: { code: string } }).data?.code).to.equal('SESSION_REVOKED');

      expect(otherSocket.connected).to.equal(true);
      expect((await request<{ ok: boolean }>(otherSocket, 'session:ping', {})).ok).to.equal(true);
      expect((await api(hub, 'GET', '/v1/me', { token: otherDevice.accessToken })).status).to.equal(200);
    } finally {
      socket.close();
      otherSocket.close();
    }
  });

  it('a refresh token spent any number of rotations ago is still reuse: the session is revoked and its socket closed', async () => {
    const user = await signUp(hub, receiver);
    const socket = await connectUser(hub, user);
    try {
      const closing = nextEvent<{ reason: string }>(socket, 'session:closing');
      const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
      // An attacker holding the current token rotates it many times (more than any fixed history of spent tokens).
      const spent: string[] = [];
      let current = user.refreshToken;
      for (let i = 0; i < 25; i++) {
        const r = await api<{ refreshToken: string }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: current } });
        expect(r.status, JSON.stringify(r.body)).to.equal(200);
        spent.push(current);
        current = r.body.refreshToken;
      }
      expect(new Set([...spent, current]).size).to.equal(26);

      // Knowing the session is not enough: a forged token of an old generation is only refused.
      const [, uid, sid] = user.refreshToken.split('.') as [string, string, string];
      const forged = `rt2.${uid}.${sid}.3.${'A'.repeat(43)}`;
      expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: forged } }))).to.equal('REFRESH_TOKEN_INVALID');
      expect(await store.hexists(keys.userSessions(user.userId), user.sessionId)).to.equal(1);

      // The real client comes back with its first token.
      const reuse = await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: spent[0] } });
      expect(reuse.status).to.equal(401);
      expect(errorCode(reuse)).to.equal('REFRESH_TOKEN_REUSED');
      expect((await closing).reason).to.equal('session_revoked');
      await disconnected;
      expect(await store.hexists(keys.userSessions(user.userId), user.sessionId)).to.equal(0);
      expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: current } }))).to.equal('SESSION_REVOKED');
      expect(errorCode(await api(hub, 'GET', '/v1/me', { token: user.accessToken }))).to.equal('SESSION_REVOKED');
    } finally {
      socket.close();
    }
  });

  it('rate-limits refreshes per session (429 with Retry-After): nothing is spent, other sessions go on, a spent token still revokes', async () => {
    const phone = validTestPhone();
    const user = await signUp(hub, receiver, { phone });
    const other = await signUp(hub, receiver, { phone });
    const limit = hub.ctx.config.REFRESH_PER_SESSION_PER_HOUR;
    let current = user.refreshToken;
    for (let i = 0; i < limit; i++) {
      const r = await api<{ refreshToken: string }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: current } });
      expect(r.status, `rotation ${i + 1}`).to.equal(200);
      current = r.body.refreshToken;
    }
    const stored = async () => JSON.parse((await store.hget(keys.userSessions(user.userId), user.sessionId))!) as { gen: number };
    const genBefore = (await stored()).gen;
    const limited = await api<{ error: { retryAfter: number; details: { limit: string } } }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: current } });
    expect(limited.status).to.equal(429);
    expect(errorCode(limited)).to.equal('RATE_LIMITED');
    expect(limited.body.error.details.limit).to.equal('refresh');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).to.be.within(1, 3600);
    expect(limited.body.error.retryAfter).to.equal(retryAfter);
    expect((await stored()).gen).to.equal(genBefore); // the refused token was not spent
    // Another session of the same user has its own budget.
    expect((await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: other.refreshToken } })).status).to.equal(200);
    // Reuse detection is not rate-limited.
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } }))).to.equal('REFRESH_TOKEN_REUSED');
    expect(await store.hexists(keys.userSessions(user.userId), user.sessionId)).to.equal(0);
  });

  it('a tampered refresh token is refused without revoking the session', async () => {
    const user = await signUp(hub, receiver);
    const last = user.refreshToken.slice(-1);
    const tampered = user.refreshToken.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: tampered } }))).to.equal('REFRESH_TOKEN_INVALID');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: 'rt1.nope' } }))).to.equal('REFRESH_TOKEN_INVALID');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.accessToken } }))).to.equal('REFRESH_TOKEN_INVALID');
    expect((await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } })).status).to.equal(200);
  });

  it('logout revokes the session and closes its sockets only', async () => {
    const phone = validTestPhone();
    const a = await signUp(hub, receiver, { phone });
    const b = await signUp(hub, receiver, { phone });
    const sa = await connectUser(hub, a);
    const sb = await connectUser(hub, b);
    try {
      const closing = nextEvent<{ reason: string }>(sa, 'session:closing');
      const out = await api(hub, 'POST', '/v1/auth/logout', { token: a.accessToken, body: {} });
      expect(out.status).to.equal(200);
      expect(out.body).to.deep.equal({ loggedOut: true });
      expect((await closing).reason).to.equal('session_revoked');
      expect(errorCode(await api(hub, 'GET', '/v1/me', { token: a.accessToken }))).to.equal('SESSION_REVOKED');
      expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: a.refreshToken } }))).to.equal('SESSION_REVOKED');
      expect((await api(hub, 'GET', '/v1/me', { token: b.accessToken })).status).to.equal(200);
      expect(sb.connected).to.equal(true);
    } finally {
      sa.close();
      sb.close();
    }
  });

  it('closes a signed-up socket when its access token expires; the client refreshes and reconnects', async () => {
    const user = await signUp(hub, receiver);
    const socket = await connectUser(hub, user);
    // Hand the live socket a token that lapses in 1 s (as if ACCESS_TOKEN_TTL_S had run out).
    const claims = jwt.decode(user.accessToken) as { sub: string; sid: string; did: string };
    const soon = jwt.sign({ sid: claims.sid, did: claims.did }, hub.ctx.config.JWT_KEYS.get('k1')!, {
      keyid: 'k1', subject: claims.sub, issuer: 'callhub', audience: 'callhub-clients', expiresIn: 1,
    });
    expect((await request<{ ok: boolean }>(socket, 'session:refresh', { accessToken: soon })).ok).to.equal(true);
    const closing = await nextEvent<{ reason: string }>(socket, 'session:closing', 5000);
    expect(closing.reason).to.equal('token_expired');
    socket.close();
    const fresh = await api<{ accessToken: string }>(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } });
    const again = await connectSocket(hub.url, fresh.body.accessToken);
    expect((await request<{ ok: boolean }>(again, 'session:ping', {})).ok).to.equal(true);
    again.close();
  });

  it('refuses missing, forged, foreign-key, expired and refresh tokens as bearer, on HTTP and socket', async () => {
    const user = await signUp(hub, receiver);
    const claims = jwt.decode(user.accessToken) as { sub: string; sid: string; did: string };
    const key = hub.ctx.config.JWT_KEYS.get('k1')!;
    const opts = { keyid: 'k1', subject: claims.sub, issuer: 'callhub', audience: 'callhub-clients' };
    const expired = jwt.sign({ sid: claims.sid, did: claims.did, exp: Math.floor(Date.now() / 1000) - 5 }, key, opts);
    const foreign = jwt.sign({ sid: claims.sid, did: claims.did }, 'another-secret-0123456789abcdef', { ...opts, expiresIn: 60 });
    const wrongAud = jwt.sign({ sid: claims.sid, did: claims.did }, key, { ...opts, audience: 'someone-else', expiresIn: 60 });
    const [h, p, s] = user.accessToken.split('.') as [string, string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ ...jwt.decode(user.accessToken) as object, sub: 'uSomeoneElse' })).toString('base64url');
    const forged = `${h}.${forgedPayload}.${s}`;
    void p;

    const cases: [string | undefined, string][] = [
      [undefined, 'UNAUTHENTICATED'],
      ['not-a-jwt', 'TOKEN_INVALID'],
      [forged, 'TOKEN_INVALID'],
      [foreign, 'TOKEN_INVALID'],
      [wrongAud, 'TOKEN_INVALID'],
      [expired, 'TOKEN_EXPIRED'],
      [user.refreshToken, 'TOKEN_INVALID'],
    ];
    for (const [token, code] of cases) {
      const res = await api(hub, 'GET', '/v1/me', token ? { token } : {});
      expect(res.status, `${code}`).to.equal(401);
      expect(errorCode(res)).to.equal(code);
      if (token) {
        const err = await connectSocket(hub.url, token).catch((e: { data?: { code: string } }) => e);
        expect((err as { data?: { code: string } }).data?.code).to.equal(code);
      }
    }
    const basic = await api(hub, 'GET', '/v1/me', { headers: { authorization: `Basic ${user.accessToken}` } });
    expect(errorCode(basic)).to.equal('UNAUTHENTICATED');

    // The genuine token still works, on HTTP and on a socket.
    expect((await api(hub, 'GET', '/v1/me', { token: user.accessToken })).status).to.equal(200);
    const socket = await connectUser(hub, user);
    expect((await request<{ ok: boolean }>(socket, 'session:ping', {})).ok).to.equal(true);
    socket.close();
  });
});
