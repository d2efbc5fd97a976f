import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import { connectSocket, nextEvent } from '../support/hub.js';
import type { WebhookReceiver } from '../support/webhookReceiver.js';
import { identityFixture, type IdentityFixture } from '../support/fixtures.js';
import { api, errorCode, signUp, testIp, validTestPhone, type SignedUpUser } from '../support/signup.js';
import { connectUser } from '../support/users.js';
import { allKeys, keysMentioning } from '../support/redisScan.js';
import { AddressBook } from '../../server/contacts/AddressBook.js';
import type { AppError } from '../../shared/protocol/errors.js';

/** Profile, devices, export, erasure and the under-13 rule, checked against what Redis holds. */
describe('identity: profile, devices, data rights', () => {
  let store: Redis;
  let receiver: WebhookReceiver;
  let hub: Hub;
  let fixture: IdentityFixture | undefined;

  before(async () => {
    fixture = await identityFixture({
      TRUST_PROXY: 'true', OTP_RESEND_COOLDOWN_S: '0', OTP_PER_PREFIX_PER_HOUR: '100000', OTP_PER_NUMBER_PER_HOUR: '50',
    });
    ({ store, receiver, hub } = fixture);
  });
  after(() => fixture?.stop());

  /**
   * Everything in Redis that names the user or the keyed hash (or plain form)
   * of their number, but the erasure tombstone (no content, short TTL; see
   * `expectTombstone`).
   */
  const traces = async (user: { userId: string; phone: string }) =>
    (await keysMentioning(store, [user.userId, hub.ctx.phoneHasher.hash(user.phone), user.phone, user.phone.slice(1)]))
      .filter((k) => k !== keys.userErased(user.userId));

  /** The tombstone an erasure leaves: a bare marker that expires after ERASURE_TOMBSTONE_TTL_S. */
  const expectTombstone = async (userId: string) => {
    expect(await store.get(keys.userErased(userId))).to.equal('1');
    expect(await store.ttl(keys.userErased(userId))).to.be.within(1, hub.ctx.config.ERASURE_TOMBSTONE_TTL_S);
  };

  it('GET and PATCH /v1/me: display name, age and gender, null clears', async () => {
    const user = await signUp(hub, receiver, { name: 'Cleo' });
    const got = await api<{ user: Record<string, unknown>; deviceId: string }>(hub, 'GET', '/v1/me', { token: user.accessToken });
    expect(got.body.user).to.include({ userId: user.userId, phone: user.phone, displayName: 'Cleo' });
    expect(got.body.deviceId).to.equal(user.deviceId);

    const patched = await api<{ user: Record<string, unknown> }>(hub, 'PATCH', '/v1/me', { token: user.accessToken, body: { displayName: 'Cleo B', age: 34, gender: 'female' } });
    expect(patched.status).to.equal(200);
    expect(patched.body.user).to.include({ displayName: 'Cleo B', age: 34, gender: 'female' });

    const cleared = await api<{ user: Record<string, unknown> }>(hub, 'PATCH', '/v1/me', { token: user.accessToken, body: { age: null, gender: null } });
    expect(cleared.body.user).to.not.have.any.keys('age', 'gender');
    expect(await store.hgetall(keys.user(user.userId))).to.not.have.any.keys('age', 'gender');
  });

  it('PATCH /v1/me refuses bad bodies and changes nothing', async () => {
    const user = await signUp(hub, receiver, { name: 'Dan' });
    const before = await store.hgetall(keys.user(user.userId));
    const bad: unknown[] = [{}, { displayName: '' }, { displayName: 42 }, { age: '12' }, { age: 12.5 }, { age: -1 }, { gender: 'robot' }, { displayName: 'x', role: 'admin' }, [], 'Dan'];
    for (const body of bad) {
      const res = await api(hub, 'PATCH', '/v1/me', { token: user.accessToken, body });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(errorCode(res)).to.equal('VALIDATION_FAILED');
    }
    expect(await store.hgetall(keys.user(user.userId))).to.deep.equal(before);
  });

  it('PUT /v1/me/devices/:id sets platform, name and push tokens of the calling device only', async () => {
    const phone = validTestPhone();
    const a = await signUp(hub, receiver, { phone, platform: 'ios' });
    const b = await signUp(hub, receiver, { phone, platform: 'android' });
    const put = await api<{ device: Record<string, unknown> }>(hub, 'PUT', `/v1/me/devices/${a.deviceId}`, {
      token: a.accessToken, body: { platform: 'ios', name: 'Work phone', pushToken: 'a1b2c3d4', voipToken: 'f00dfeed' },
    });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    expect(put.body.device).to.include({ deviceId: a.deviceId, platform: 'ios', name: 'Work phone', pushToken: 'a1b2c3d4', voipToken: 'f00dfeed' });

    // PUT replaces: tokens left out are cleared.
    const replaced = await api<{ device: Record<string, unknown> }>(hub, 'PUT', `/v1/me/devices/${a.deviceId}`, { token: a.accessToken, body: { platform: 'ios', pushToken: 'a1b2c3d5' } });
    expect(replaced.body.device).to.include({ pushToken: 'a1b2c3d5' });
    expect(replaced.body.device).to.not.have.any.keys('voipToken', 'name');

    const other = await api(hub, 'PUT', `/v1/me/devices/${b.deviceId}`, { token: a.accessToken, body: { platform: 'ios', pushToken: 'evil' } });
    expect(other.status).to.equal(403);
    expect(errorCode(other)).to.equal('FORBIDDEN');
    for (const body of [{ platform: 'symbian' }, { platform: 'ios', pushToken: 'has spaces' }, { platform: 'ios', extra: true }, { pushToken: 'abc' }]) {
      const res = await api(hub, 'PUT', `/v1/me/devices/${a.deviceId}`, { token: a.accessToken, body });
      expect(errorCode(res), JSON.stringify(body)).to.equal('VALIDATION_FAILED');
    }
    expect(errorCode(await api(hub, 'PUT', '/v1/me/devices/bad%20id', { token: a.accessToken, body: { platform: 'ios' } }))).to.equal('VALIDATION_FAILED');
    const stored = JSON.parse((await store.hget(keys.userDevices(a.userId), a.deviceId))!) as Record<string, unknown>;
    expect(stored).to.include({ pushToken: 'a1b2c3d5' });
    const bStored = JSON.parse((await store.hget(keys.userDevices(b.userId), b.deviceId))!) as Record<string, unknown>;
    expect(bStored).to.not.have.property('pushToken');
  });

  it('GET /v1/me/export returns profile, devices, sessions and an address-book summary, without secrets', async () => {
    const phone = validTestPhone();
    const user = await signUp(hub, receiver, { phone, name: 'Eve' });
    const second = await signUp(hub, receiver, { phone, platform: 'web' });
    await api(hub, 'PUT', `/v1/me/devices/${user.deviceId}`, { token: user.accessToken, body: { platform: 'ios', pushToken: 'tok123' } });
    await api(hub, 'PUT', '/v1/contacts', {
      token: user.accessToken,
      body: { entries: [{ clientId: 'c1', phones: [validTestPhone(), validTestPhone()] }, { clientId: 'c2', emails: ['a@example.com'] }] },
    });
    const res = await api<{
      user: Record<string, unknown>; devices: Record<string, unknown>[]; sessions: Record<string, unknown>[];
      addressBook: Record<string, unknown>; discovery: Record<string, unknown>; exportedAt: number;
    }>(hub, 'GET', '/v1/me/export', { token: second.accessToken });
    expect(res.status).to.equal(200);
    expect(res.body.user).to.include({ userId: user.userId, phone, displayName: 'Eve' });
    expect(res.body.devices.map((d) => d.deviceId).sort()).to.deep.equal([user.deviceId, second.deviceId].sort());
    expect(res.body.devices.find((d) => d.deviceId === user.deviceId)).to.include({ platform: 'ios', pushToken: 'tok123' });
    expect(res.body.sessions).to.have.length(2);
    expect(res.body.sessions.find((s) => s.current)?.sessionId).to.equal(second.sessionId);
    expect(res.body.addressBook).to.deep.equal({ numbers: 2, emails: 1, clientIds: ['c1', 'c2'] });
    expect(res.body.discovery).to.deep.equal({ newNumbersCheckedToday: 2, dailyLimit: 2000 });
    const text = JSON.stringify(res.body);
    for (const secret of ['refreshHash', 'spent', user.refreshToken.split('.').pop()!, second.refreshToken.split('.').pop()!]) {
      expect(text).not.to.contain(secret);
    }
  });

  it('DELETE /v1/me erases everything, closes every socket with account_deleted, and announces user:deleted', async () => {
    const phone = validTestPhone();
    const user = await signUp(hub, receiver, { phone, name: 'Gone' });
    const device2 = await signUp(hub, receiver, { phone });
    const friend = await signUp(hub, receiver, { name: 'Friend' });
    await api(hub, 'PUT', `/v1/me/devices/${user.deviceId}`, { token: user.accessToken, body: { platform: 'ios', pushToken: 'tok' } });
    // Their address book holds a user and a non-user; the friend's book holds someone else.
    const stranger = validTestPhone();
    const up = await api<{ matches: unknown[] }>(hub, 'PUT', '/v1/contacts', {
      token: user.accessToken, body: { entries: [{ clientId: 'f', phones: [friend.phone] }, { phones: [stranger], emails: ['x@example.org'] }] },
    });
    const bookHashes = [hub.ctx.phoneHasher.hash(stranger), hub.ctx.phoneHasher.hashTagged('email', 'x@example.org')];
    expect(await keysMentioning(store, bookHashes)).to.have.length(3); // the book, and one reverse-index set each
    expect(up.body.matches).to.have.length(1);
    await api(hub, 'PUT', '/v1/contacts', { token: friend.accessToken, body: { entries: [{ phones: [validTestPhone()] }] } });
    // A pending code for the number too.
    expect((await api(hub, 'POST', '/v1/auth/code', { body: { phone }, ip: testIp() })).status).to.equal(200);
    expect(await traces(user)).to.have.length.greaterThan(3);

    const s1 = await connectUser(hub, user);
    const s2 = await connectUser(hub, device2);
    const deleted = new Promise<string>((resolve) => hub.ctx.events.once('user:deleted', (e) => resolve(e.userId)));
    const closing = [nextEvent<{ reason: string }>(s1, 'session:closing'), nextEvent<{ reason: string }>(s2, 'session:closing')];
    const res = await api(hub, 'DELETE', '/v1/me', { token: user.accessToken });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ deleted: true });
    expect((await Promise.all(closing)).map((c) => c.reason)).to.deep.equal(['account_deleted', 'account_deleted']);
    expect(await deleted).to.equal(user.userId);

    expect(await traces(user)).to.deep.equal([]);
    await expectTombstone(user.userId);
    expect(await keysMentioning(store, bookHashes)).to.deep.equal([]);
    // The friend's number stays only in the friend's own index and send window, not in a reverse index.
    const friendHash = hub.ctx.phoneHasher.hash(friend.phone);
    expect(await keysMentioning(store, [friendHash])).to.have.members([keys.phoneIndex(friendHash), keys.rateLimit('otp-number', friendHash)]);
    expect(errorCode(await api(hub, 'GET', '/v1/me', { token: device2.accessToken }))).to.equal('SESSION_REVOKED');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } }))).to.equal('SESSION_REVOKED');
    const refused = await connectSocket(hub.url, user.accessToken).catch((e: { data?: { code: string } }) => e);
    expect((refused as { data?: { code: string } }).data?.code).to.equal('SESSION_REVOKED');

    // The friend's own data is untouched.
    expect(await store.hlen(keys.userBook(friend.userId))).to.equal(1);
    expect((await api(hub, 'GET', '/v1/me', { token: friend.accessToken })).status).to.equal(200);

    // The number can sign up again, as a new account.
    const again = await signUp(hub, receiver, { phone });
    expect(again.newUser).to.equal(true);
    expect(again.userId).not.to.equal(user.userId);
    s1.close();
    s2.close();
  });

  it('a sign-in racing an erasure brings back no session, device, profile or address book', async () => {
    const phone = validTestPhone();
    const user = await signUp(hub, receiver, { phone, name: 'Racer' });
    // POST /v1/auth/verify, first step, just before the erasure: it finds the account.
    const found = await hub.ctx.accounts.findOrCreate(phone, null);
    expect(found).to.deep.include({ created: false });
    expect(found.profile.userId).to.equal(user.userId);
    // The erasure runs in between (DELETE /v1/me, or the under-13 rule).
    expect((await api(hub, 'DELETE', '/v1/me', { token: user.accessToken })).status).to.equal(200);
    // verify's next step: a session for the account it found.
    const late = await hub.ctx.sessions.create(user.userId, 'dLate', { device: { platform: 'ios' } }).then(() => null, (e: unknown) => e);
    expect((late as AppError | null)?.code).to.equal('ACCOUNT_DELETED');
    expect(await store.exists(keys.userSessions(user.userId), keys.userDevices(user.userId), keys.user(user.userId))).to.equal(0);

    // A verification that read the phone index before the erasure dropped it does not write the profile back.
    const indexKey = keys.phoneIndex(hub.ctx.phoneHasher.hash(phone));
    await store.set(indexKey, user.userId);
    const stale = await hub.ctx.accounts.findOrCreate(phone, 'Ghost').then(() => null, (e: unknown) => e);
    await store.del(indexKey); // what the erasure itself did
    expect((stale as AppError | null)?.code).to.equal('ACCOUNT_DELETED');
    expect(await store.exists(keys.user(user.userId))).to.equal(0);

    // An upload that passed its checks before the erasure stores nothing after it.
    const book = new AddressBook(hub.ctx.redis);
    const field = `n:${hub.ctx.phoneHasher.hash(validTestPhone())}` as const;
    const upload = await book.replace(user.userId, new Map([[field, { ids: new Set(['c1']), anon: false }]])).then(() => null, (e: unknown) => e);
    expect((upload as AppError | null)?.code).to.equal('ACCOUNT_DELETED');
    const change = await book.change(user.userId, { add: new Map([[field, { ids: new Set(), anon: true }]]) }, 100).then(() => null, (e: unknown) => e);
    expect((change as AppError | null)?.code).to.equal('ACCOUNT_DELETED');
    expect(await keysMentioning(store, [field.slice(2)])).to.deep.equal([]);

    expect(await traces(user)).to.deep.equal([]);
    await expectTombstone(user.userId);
  });

  it('a session whose account is gone or being erased opens no socket and passes no HTTP check', async () => {
    const user = await signUp(hub, receiver);
    const refusedSocket = async () => {
      const err = await connectSocket(hub.url, user.accessToken).then((s) => { s.close(); return null; }, (e: { data?: { code: string } }) => e);
      return err?.data?.code;
    };
    // Being erased: the tombstone is written, the profile not deleted yet.
    await store.set(keys.userErased(user.userId), '1', 'EX', 60);
    expect(await refusedSocket()).to.equal('SESSION_REVOKED');
    expect(errorCode(await api(hub, 'GET', '/v1/me', { token: user.accessToken }))).to.equal('SESSION_REVOKED');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } }))).to.equal('SESSION_REVOKED');
    await store.del(keys.userErased(user.userId));
    expect(await refusedSocket()).to.equal(undefined); // the same token works while the account is whole

    // A session left without its profile (what the race could leave before sessions checked for the account).
    await store.del(keys.user(user.userId));
    expect(await store.hexists(keys.userSessions(user.userId), user.sessionId)).to.equal(1);
    expect(await refusedSocket()).to.equal('SESSION_REVOKED');
    expect(errorCode(await api(hub, 'GET', '/v1/me', { token: user.accessToken }))).to.equal('SESSION_REVOKED');
    expect(errorCode(await api(hub, 'POST', '/v1/auth/refresh', { body: { refreshToken: user.refreshToken } }))).to.equal('SESSION_REVOKED');
  });

  describe('the under-13 rule', () => {
    it('at verify, for a new number: no account, nothing kept about the number', async () => {
      const phone = validTestPhone();
      const before = await allKeys(store);
      expect((await api(hub, 'POST', '/v1/auth/code', { body: { phone }, ip: testIp() })).status).to.equal(200);
      const { code } = await receiver.waitForCode(phone);
      const res = await api(hub, 'POST', '/v1/auth/verify', { body: { phone, code, device: { platform: 'ios' }, displayName: 'Kid', age: 12 }, ip: testIp() });
      expect(res.status).to.equal(403);
      expect(errorCode(res)).to.equal('UNDER_MINIMUM_AGE');
      expect((res.body as { error: { message: string } }).error.message).to.match(/under 13/);
      expect(await hub.ctx.accounts.findByPhone(phone)).to.equal(null);
      expect(await keysMentioning(store, [hub.ctx.phoneHasher.hash(phone), phone])).to.deep.equal([]);
      // Only anonymous rate-limit windows (IP hashes, the number prefix) were added.
      const added = (await allKeys(store)).filter((k) => !before.includes(k));
      for (const k of added) expect(k).to.match(/^rl:(otp-ip|verify-ip|otp-prefix):/);
    });

    it('at verify, for an existing account: the account is erased and its sockets closed', async () => {
      const phone = validTestPhone();
      const user = await signUp(hub, receiver, { phone, name: 'Was 30' });
      const socket = await connectUser(hub, user);
      const closing = nextEvent<{ reason: string; message: string }>(socket, 'session:closing');
      expect((await api(hub, 'POST', '/v1/auth/code', { body: { phone }, ip: testIp() })).status).to.equal(200);
      const { code } = await receiver.waitForCode(phone, { after: 1 });
      const res = await api(hub, 'POST', '/v1/auth/verify', { body: { phone, code, device: { platform: 'ios' }, age: 9 }, ip: testIp() });
      expect(errorCode(res)).to.equal('UNDER_MINIMUM_AGE');
      const closed = await closing;
      expect(closed.reason).to.equal('account_deleted');
      expect(closed.message).to.match(/under 13/);
      expect(await traces(user)).to.deep.equal([]);
      await expectTombstone(user.userId);
      socket.close();
    });

    it('via PATCH /v1/me: the account is erased', async () => {
      const user = await signUp(hub, receiver, { name: 'Teen' });
      const socket = await connectUser(hub, user);
      const closing = nextEvent<{ reason: string }>(socket, 'session:closing');
      const res = await api(hub, 'PATCH', '/v1/me', { token: user.accessToken, body: { age: 12 } });
      expect(res.status).to.equal(403);
      expect(errorCode(res)).to.equal('UNDER_MINIMUM_AGE');
      expect((await closing).reason).to.equal('account_deleted');
      expect(await traces(user)).to.deep.equal([]);
      await expectTombstone(user.userId);
      socket.close();
    });

    it('13 and over is accepted and stored', async () => {
      const user = await signUp(hub, receiver, { age: 13 });
      expect(await store.hget(keys.user(user.userId), 'age')).to.equal('13');
      const res = await api(hub, 'PATCH', '/v1/me', { token: user.accessToken, body: { age: 14 } });
      expect((res.body as { user: { age: number } }).user.age).to.equal(14);
    });
  });

  it('keeps no plain number of anyone outside the profile hash (and no plain code)', async () => {
    const user: SignedUpUser = await signUp(hub, receiver, { name: 'Plain' });
    const hits = await keysMentioning(store, [user.phone]);
    expect(hits).to.deep.equal([keys.user(user.userId)]);
  });
});
