import { expect } from 'chai';
import type { Redis } from 'ioredis';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import type { TestRedis } from '../support/redis.js';
import { nextEvent, startTestHub } from '../support/hub.js';
import type { WebhookReceiver } from '../support/webhookReceiver.js';
import { identityFixture, type IdentityFixture } from '../support/fixtures.js';
import { api, errorCode, signUp, validTestPhone, type SignedUpUser } from '../support/signup.js';
import { connectUser } from '../support/users.js';
import { allKeys, keyContent, keysMentioning, snapshot } from '../support/redisScan.js';
import { PhoneNumbers } from '../../server/identity/PhoneNumbers.js';

interface Reply {
  matches: { index: number; clientId?: string; userId: string; displayName: string | null }[];
  stored: { numbers: number; emails: number };
  ignored: number;
}

/** National form of a +44 number, as it sits in a UK user's phone book. */
const national = (e164: string) => `0${e164.slice(3, 7)} ${e164.slice(7)}`;

/** Address book upload, matching, contact:joined, partial and full deletion, discovery quota, bad input. */
describe('contacts: address book and discovery', () => {
  let redis: TestRedis;
  let store: Redis;
  let receiver: WebhookReceiver;
  let hub: Hub;
  let fixture: IdentityFixture | undefined;

  before(async () => {
    fixture = await identityFixture({ TRUST_PROXY: 'true', OTP_RESEND_COOLDOWN_S: '0', OTP_PER_PREFIX_PER_HOUR: '100000' });
    ({ redis, store, receiver, hub } = fixture);
  });
  after(() => fixture?.stop());

  const put = (user: SignedUpUser, body: unknown) => api<Reply>(hub, 'PUT', '/v1/contacts', { token: user.accessToken, body });
  const patch = (user: SignedUpUser, body: unknown) => api<Reply>(hub, 'PATCH', '/v1/contacts', { token: user.accessToken, body });
  const numberHash = (e164: string) => hub.ctx.phoneHasher.hash(e164);

  it('replies with the entries that are users, by index and client id; national numbers read in the owner\'s country', async () => {
    const owner = await signUp(hub, receiver, { name: 'Owner' });
    const bob = await signUp(hub, receiver, { name: 'Bob' });
    const carol = await signUp(hub, receiver, { name: 'Carol' });
    const res = await put(owner, {
      entries: [
        { clientId: 'c-bob', name: 'Bob Smith', phones: [national(bob.phone)] },
        { clientId: 'c-us', name: 'Nobody', phones: ['+1 (201) 555-0123'] },
        { name: 'Carol', phones: ['not a number', carol.phone], emails: ['Carol@Example.COM'] },
        { clientId: 'c-me', phones: [owner.phone] },
        { clientId: 'c-bob-work', phones: [bob.phone, `+${bob.phone.slice(1)}`] },
      ],
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.matches).to.deep.equal([
      { index: 0, clientId: 'c-bob', userId: bob.userId, displayName: 'Bob' },
      { index: 2, userId: carol.userId, displayName: 'Carol' },
      { index: 4, clientId: 'c-bob-work', userId: bob.userId, displayName: 'Bob' },
    ]);
    expect(res.body.stored).to.deep.equal({ numbers: 4, emails: 1 });
    expect(res.body.ignored).to.equal(1);

    // Only keyed hashes: no names, no plain numbers (in any form), no plain email.
    const book = await keyContent(store, keys.userBook(owner.userId));
    expect(book).to.contain(`n:${numberHash(bob.phone)}=0 c-bob c-bob-work`);
    for (const plain of ['Bob', 'Smith', 'Nobody', 'Carol', 'carol@example.com', 'Carol@Example.COM', '2015550123', bob.phone.slice(3), carol.phone.slice(3)]) {
      expect(await keysMentioning(store, [plain]), plain).to.satisfy((hits: string[]) => hits.every((k) => k.startsWith('user:{') && !k.endsWith(':book')));
    }
    expect(await keysMentioning(store, ['2015550123', 'example.com'])).to.deep.equal([]);
    // Reverse index: each hash names the owner.
    expect(await store.smembers(keys.contactOwners(numberHash('+12015550123')))).to.deep.equal([owner.userId]);
    expect(await store.smembers(keys.contactOwners(hub.ctx.phoneHasher.hashTagged('email', 'carol@example.com')))).to.deep.equal([owner.userId]);
  });

  it('PUT replaces the book: what is left out is gone, reverse index included', async () => {
    const owner = await signUp(hub, receiver);
    const [n1, n2, n3] = [validTestPhone(), validTestPhone(), validTestPhone()];
    await put(owner, { entries: [{ clientId: 'a', phones: [n1, n2] }] });
    const res = await put(owner, { entries: [{ clientId: 'b', phones: [n2, n3] }] });
    expect(res.body.stored).to.deep.equal({ numbers: 2, emails: 0 });
    expect(await store.exists(keys.contactOwners(numberHash(n1)))).to.equal(0);
    expect(await keysMentioning(store, [numberHash(n1)])).to.deep.equal([]);
    expect(await store.smembers(keys.contactOwners(numberHash(n3)))).to.deep.equal([owner.userId]);
    expect(await store.hget(keys.userBook(owner.userId), `n:${numberHash(n2)}`)).to.equal('0 b');
  });

  it('tells a connected owner at once when a contact registers (contact:joined), with their client ids', async () => {
    const joiner = validTestPhone();
    const owner = await signUp(hub, receiver);
    const anonOwner = await signUp(hub, receiver);
    const outsider = await signUp(hub, receiver);
    await put(owner, { entries: [{ clientId: 'j1', phones: [national(joiner)] }, { clientId: 'j2', phones: [joiner] }] });
    await put(anonOwner, { entries: [{ name: 'J', phones: [joiner] }] });
    const s1 = await connectUser(hub, owner);
    const s2 = await connectUser(hub, anonOwner);
    const s3 = await connectUser(hub, outsider);
    try {
      let outsiderTold = false;
      s3.on('contact:joined', () => { outsiderTold = true; });
      const told1 = nextEvent<{ userId: string; displayName: string | null; clientIds: string[] }>(s1, 'contact:joined');
      const told2 = nextEvent<{ userId: string; displayName: string | null; clientIds: string[] }>(s2, 'contact:joined');
      const joined = await signUp(hub, receiver, { phone: joiner, name: 'Jo' });
      const [e1, e2] = await Promise.all([told1, told2]);
      expect(e1.userId).to.equal(joined.userId);
      expect(e1.displayName).to.equal('Jo');
      expect(e1.clientIds.sort()).to.deep.equal(['j1', 'j2']);
      expect(e2).to.deep.equal({ userId: joined.userId, displayName: 'Jo', clientIds: [] });
      // A second sign-in of the same number is not a new registration.
      const again = nextEvent(s1, 'contact:joined', 500).then(() => true, () => false);
      await signUp(hub, receiver, { phone: joiner });
      expect(await again).to.equal(false);
      expect(outsiderTold).to.equal(false);
    } finally {
      s1.close();
      s2.close();
      s3.close();
    }
  });

  it('PATCH adds (matches by add index) and removes by client id, number and email, leaving nothing of removed entries', async () => {
    const owner = await signUp(hub, receiver);
    const friend = await signUp(hub, receiver, { name: 'Fr' });
    const [keep, gone1, gone2, shared] = [validTestPhone(), validTestPhone(), validTestPhone(), validTestPhone()];
    await put(owner, {
      entries: [
        { clientId: 'keep', phones: [keep] },
        { clientId: 'g1', phones: [gone1], emails: ['gone@example.net'] },
        { clientId: 's1', phones: [shared] },
        { clientId: 's2', phones: [shared] },
        { phones: [gone2] },
      ],
    });
    const added = await patch(owner, { add: [{ phones: [validTestPhone()] }, { clientId: 'fr', phones: [friend.phone] }] });
    expect(added.status).to.equal(200);
    expect(added.body.matches).to.deep.equal([{ index: 1, clientId: 'fr', userId: friend.userId, displayName: 'Fr' }]);

    const removed = await patch(owner, { remove: { clientIds: ['g1', 's1'], phones: [national(gone2)], emails: [] } });
    expect(removed.status).to.equal(200);
    expect(removed.body.matches).to.deep.equal([]);
    // g1's number and email are gone with their reverse entries; `shared` survives through s2.
    const goneHashes = [numberHash(gone1), numberHash(gone2), hub.ctx.phoneHasher.hashTagged('email', 'gone@example.net')];
    expect(await keysMentioning(store, goneHashes)).to.deep.equal([]);
    expect(await store.hget(keys.userBook(owner.userId), `n:${numberHash(shared)}`)).to.equal('0 s2');
    expect(await store.smembers(keys.contactOwners(numberHash(shared)))).to.deep.equal([owner.userId]);
    expect(await store.smembers(keys.contactOwners(numberHash(keep)))).to.deep.equal([owner.userId]);

    const byEmail = await patch(owner, { add: [{ clientId: 'm', emails: ['Mail@Example.net'] }] });
    expect(byEmail.body.stored.emails).to.equal(1);
    await patch(owner, { remove: { emails: ['mail@example.NET'] } });
    expect(await keysMentioning(store, [hub.ctx.phoneHasher.hashTagged('email', 'mail@example.net')])).to.deep.equal([]);
  });

  it('DELETE /v1/contacts removes the book and every reverse-index entry; nothing of it is left in Redis', async () => {
    const owner = await signUp(hub, receiver);
    const other = await signUp(hub, receiver);
    const member = await signUp(hub, receiver);
    const numbers = [validTestPhone(), validTestPhone(), member.phone];
    const both = validTestPhone(); // also in someone else's book
    await put(owner, { entries: [{ clientId: 'x', phones: numbers, emails: ['del@example.io'] }, { phones: [both] }] });
    await put(other, { entries: [{ phones: [both] }] });
    const res = await api(hub, 'DELETE', '/v1/contacts', { token: owner.accessToken });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ deleted: true });

    expect(await store.exists(keys.userBook(owner.userId))).to.equal(0);
    const hashes = [...numbers.map(numberHash), hub.ctx.phoneHasher.hashTagged('email', 'del@example.io')];
    // Only the member's own phone index (and send window) still names the member's number.
    const left = await keysMentioning(store, hashes);
    expect(left.filter((k) => !k.startsWith('phone:') && !k.startsWith('rl:otp-number:'))).to.deep.equal([]);
    // No reverse index names the owner any more; the other user's entry stays.
    for (const key of (await allKeys(store)).filter((k) => k.startsWith('contacts:owners:'))) {
      expect(await store.sismember(key, owner.userId)).to.equal(0);
    }
    expect(await store.smembers(keys.contactOwners(numberHash(both)))).to.deep.equal([other.userId]);
    // Deleting an empty book is fine.
    expect((await api(hub, 'DELETE', '/v1/contacts', { token: owner.accessToken })).status).to.equal(200);
  });

  it('refuses bad input and changes nothing', async () => {
    const owner = await signUp(hub, receiver);
    await put(owner, { entries: [{ clientId: 'a', phones: [validTestPhone()] }] });
    const before = await snapshot(store);
    const cases: [string, unknown, string][] = [
      ['PUT', {}, 'VALIDATION_FAILED'],
      ['PUT', { entries: 'all of them' }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [{ phones: '+447400123456' }] }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [{ phones: [447400123456] }] }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [{ clientId: 'has space', phones: [] }] }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [{ phones: [], nickname: 'x' }] }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [{ phones: Array.from({ length: 21 }, () => '+447400123456') }] }, 'VALIDATION_FAILED'],
      ['PUT', { entries: [], extra: 1 }, 'VALIDATION_FAILED'],
      ['PATCH', {}, 'VALIDATION_FAILED'],
      ['PATCH', { remove: { names: ['Bob'] } }, 'VALIDATION_FAILED'],
      ['PATCH', { add: [{ emails: [5] }] }, 'VALIDATION_FAILED'],
    ];
    for (const [method, body, code] of cases) {
      const res = await api(hub, method, '/v1/contacts', { token: owner.accessToken, body });
      expect(errorCode(res), `${method} ${JSON.stringify(body)}`).to.equal(code);
    }
    expect(errorCode(await api(hub, 'PUT', '/v1/contacts', { body: { entries: [] } }))).to.equal('UNAUTHENTICATED');
    expect(errorCode(await api(hub, 'DELETE', '/v1/contacts', { token: 'forged.token.here' }))).to.equal('TOKEN_INVALID');
    expect(errorCode(await api(hub, 'PUT', '/v1/contacts', { token: owner.accessToken, rawBody: '{"entries": [' }))).to.equal('BAD_REQUEST');
    const huge = await api(hub, 'PUT', '/v1/contacts', { token: owner.accessToken, rawBody: JSON.stringify({ entries: [{ name: 'x'.repeat(200), phones: [] }] }).padEnd(3 * 1024 * 1024, ' ') });
    expect(huge.status).to.equal(413);
    expect(errorCode(huge)).to.equal('PAYLOAD_TOO_LARGE');
    expect(await snapshot(store)).to.deep.equal(before);
  });

  it('reaches sockets on another hub process: contact:joined and account_deleted travel through the adapter', async () => {
    const shared = {
      ...receiver.hubEnv(), TRUST_PROXY: 'true', OTP_RESEND_COOLDOWN_S: '0', OTP_PER_PREFIX_PER_HOUR: '100000',
      JWT_KEYS: [...hub.ctx.config.JWT_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
      IDENTITY_HMAC_KEYS: [...hub.ctx.config.IDENTITY_HMAC_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
    };
    const other = await startTestHub(redis.url, shared);
    try {
      const owner = await signUp(hub, receiver);
      const joiner = validTestPhone();
      await put(owner, { entries: [{ clientId: 'x1', phones: [joiner] }] });
      const socket = await connectUser(other, owner); // connected to the second hub
      try {
        const told = nextEvent<{ userId: string; clientIds: string[] }>(socket, 'contact:joined');
        const joined = await signUp(hub, receiver, { phone: joiner });
        expect(await told).to.deep.include({ userId: joined.userId, clientIds: ['x1'] });
        const closing = nextEvent<{ reason: string }>(socket, 'session:closing');
        const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
        expect((await api(hub, 'DELETE', '/v1/me', { token: owner.accessToken })).status).to.equal(200);
        expect((await closing).reason).to.equal('account_deleted');
        await disconnected;
      } finally {
        socket.close();
      }
    } finally {
      await other.close();
    }
  });

  it('reads a large upload in chunks, letting the event loop turn between them', async () => {
    const owner = await signUp(hub, receiver);
    // The event loop's turns, counted from outside the request; each parse notes the turn it ran in.
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const seen = new Set<number>();
    const original = PhoneNumbers.normaliseContact.bind(PhoneNumbers);
    PhoneNumbers.normaliseContact = (input, country) => {
      seen.add(turns);
      return original(input, country);
    };
    try {
      // 1000 numbers that do not read as valid: parsed, but nothing to charge or store.
      const entries = Array.from({ length: 50 }, () => ({ phones: Array.from({ length: 20 }, () => '+44 0000 0000') }));
      const res = await put(owner, { entries });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.ignored).to.equal(1000);
    } finally {
      ticking = false;
      PhoneNumbers.normaliseContact = original;
    }
    expect(seen.size).to.be.at.least(5); // 1000 parses, a turn at least every 200
  });

  describe('limits', () => {
    let small: Hub;

    before(async () => {
      small = await startTestHub(redis.url, {
        ...receiver.hubEnv(), TRUST_PROXY: 'true', OTP_RESEND_COOLDOWN_S: '0', OTP_PER_PREFIX_PER_HOUR: '100000',
        DISCOVERY_NEW_NUMBERS_PER_DAY: '5', CONTACTS_MAX_ENTRIES: '6', CONTACTS_MAX_IDENTIFIERS: '8', CONTACTS_REQUESTS_PER_HOUR: '10',
      });
    });
    after(async () => {
      await small?.close();
    });

    const call = (user: SignedUpUser, method: string, body?: unknown) => api<Reply & { error: { retryAfter: number; details: Record<string, number> } }>(small, method, '/v1/contacts', { token: user.accessToken, ...(body !== undefined ? { body } : {}) });

    it('charges only new numbers against the daily discovery quota; past it, 429 DISCOVERY_QUOTA_EXCEEDED changes nothing', async () => {
      const owner = await signUp(small, receiver);
      const four = [validTestPhone(), validTestPhone(), validTestPhone(), validTestPhone()];
      expect((await call(owner, 'PUT', { entries: [{ phones: four }] })).status).to.equal(200);
      // Re-uploading known numbers costs nothing.
      expect((await call(owner, 'PUT', { entries: [{ phones: four }, { emails: ['e@example.com'] }] })).status).to.equal(200);
      const bookBefore = await store.hgetall(keys.userBook(owner.userId));
      const over = await call(owner, 'PATCH', { add: [{ phones: [validTestPhone(), validTestPhone()] }] });
      expect(over.status).to.equal(429);
      expect(errorCode(over)).to.equal('DISCOVERY_QUOTA_EXCEEDED');
      const retryAfter = Number(over.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 86400);
      expect(over.body.error.details).to.deep.equal({ newNumbers: 2, remaining: 1 });
      expect(await store.hgetall(keys.userBook(owner.userId))).to.deep.equal(bookBefore);
      // One more fits; deleting and re-uploading does not reset the quota.
      expect((await call(owner, 'PATCH', { add: [{ phones: [validTestPhone()] }] })).status).to.equal(200);
      expect((await call(owner, 'DELETE')).status).to.equal(200);
      const reupload = await call(owner, 'PUT', { entries: [{ phones: [four[0]] }] });
      expect(errorCode(reupload)).to.equal('DISCOVERY_QUOTA_EXCEEDED');
      expect(await store.exists(keys.userBook(owner.userId))).to.equal(0);
      const exported = await api<{ discovery: unknown }>(small, 'GET', '/v1/me/export', { token: owner.accessToken });
      expect(exported.body.discovery).to.deep.equal({ newNumbersCheckedToday: 5, dailyLimit: 5 });
    });

    it('bounds entries per upload and identifiers per book (413), changing nothing', async () => {
      const owner = await signUp(small, receiver);
      const tooMany = Array.from({ length: 7 }, () => ({ emails: [`${Math.random().toString(36).slice(2)}@example.com`] }));
      expect(errorCode(await call(owner, 'PUT', { entries: tooMany }))).to.equal('PAYLOAD_TOO_LARGE');
      expect(await store.exists(keys.userBook(owner.userId))).to.equal(0);
      const emails = (n: number) => Array.from({ length: n }, (_, i) => `p${i}-${Math.random().toString(36).slice(2)}@example.com`);
      expect((await call(owner, 'PUT', { entries: [{ emails: emails(6) }] })).status).to.equal(200);
      const before = await store.hgetall(keys.userBook(owner.userId));
      const full = await call(owner, 'PATCH', { add: [{ emails: emails(3) }] });
      expect(full.status).to.equal(413);
      expect(errorCode(full)).to.equal('PAYLOAD_TOO_LARGE');
      expect(await store.hgetall(keys.userBook(owner.userId))).to.deep.equal(before);
      expect(errorCode(await call(owner, 'PUT', { entries: [{ emails: emails(9) }] }))).to.equal('PAYLOAD_TOO_LARGE');
    });

    it('PATCH removes and adds in one step: when the result would be too large (413), the removals did not happen either', async () => {
      const owner = await signUp(small, receiver);
      const emails = (n: number) => Array.from({ length: n }, (_, i) => `r${i}-${Math.random().toString(36).slice(2)}@example.com`);
      const held = emails(6);
      expect((await call(owner, 'PUT', { entries: [{ clientId: 'old', emails: held.slice(0, 4) }, { emails: held.slice(4) }] })).status).to.equal(200);
      const before = await store.hgetall(keys.userBook(owner.userId));
      // 6 - 2 + 5 = 9 > 8.
      const full = await call(owner, 'PATCH', { remove: { emails: held.slice(0, 2) }, add: [{ emails: emails(5) }] });
      expect(full.status).to.equal(413);
      expect(errorCode(full)).to.equal('PAYLOAD_TOO_LARGE');
      expect(await store.hgetall(keys.userBook(owner.userId))).to.deep.equal(before);
      for (const e of held) {
        expect(await store.smembers(keys.contactOwners(small.ctx.phoneHasher.hashTagged('email', e))), e).to.deep.equal([owner.userId]);
      }
      // Room is counted after the removals: removing the 4 entries of client id `old` makes room for 6 - 4 + 6 = 8.
      const fits = await call(owner, 'PATCH', { remove: { clientIds: ['old'] }, add: [{ emails: emails(6) }] });
      expect(fits.status, JSON.stringify(fits.body)).to.equal(200);
      expect(fits.body.stored).to.deep.equal({ numbers: 0, emails: 8 });
      for (const e of held.slice(0, 4)) {
        expect(await store.exists(keys.contactOwners(small.ctx.phoneHasher.hashTagged('email', e))), e).to.equal(0);
      }
    });

    describe('reading uploads', () => {
      let parsed = 0;
      const original = PhoneNumbers.normaliseContact.bind(PhoneNumbers);
      // Counts the (synchronous, costly) number parses the hub does; the real parser still does the work.
      beforeEach(() => {
        parsed = 0;
        PhoneNumbers.normaliseContact = (input, country) => {
          parsed += 1;
          return original(input, country);
        };
      });
      afterEach(() => {
        PhoneNumbers.normaliseContact = original;
      });

      it('refuses a request naming more numbers and emails than CONTACTS_MAX_IDENTIFIERS (413) before reading any', async () => {
        const owner = await signUp(small, receiver);
        const one = validTestPhone();
        // Nine copies of one number: a single book entry once read, but nine to read.
        const put = await call(owner, 'PUT', { entries: [{ phones: Array.from({ length: 9 }, () => one) }] });
        expect(put.status).to.equal(413);
        expect(errorCode(put)).to.equal('PAYLOAD_TOO_LARGE');
        const patched = await call(owner, 'PATCH', { add: [{ phones: [one, one, one, one, one] }], remove: { phones: [one, one], emails: ['a@example.com', 'b@example.com'] } });
        expect(errorCode(patched)).to.equal('PAYLOAD_TOO_LARGE');
        expect(parsed).to.equal(0);
        expect(await store.exists(keys.userBook(owner.userId), keys.userQuota(owner.userId, 'discovery'))).to.equal(0);
        // At the limit it is read and stored.
        const ok = await call(owner, 'PUT', { entries: [{ phones: Array.from({ length: 8 }, () => one) }] });
        expect(ok.status).to.equal(200);
        expect(ok.body.stored).to.deep.equal({ numbers: 1, emails: 0 });
        expect(parsed).to.equal(8);
      });

      it('with no discovery quota left, stops reading at the first new number (429); known numbers stay free', async () => {
        const owner = await signUp(small, receiver);
        const known = [validTestPhone(), validTestPhone(), validTestPhone(), validTestPhone(), validTestPhone()];
        expect((await call(owner, 'PUT', { entries: [{ phones: known }] })).status).to.equal(200);
        parsed = 0;
        const over = await call(owner, 'PUT', { entries: [{ phones: known }, { phones: [validTestPhone()] }, { phones: [validTestPhone(), validTestPhone()] }] });
        expect(over.status).to.equal(429);
        expect(errorCode(over)).to.equal('DISCOVERY_QUOTA_EXCEEDED');
        expect(over.body.error.details).to.deep.equal({ newNumbers: 1, remaining: 0 });
        expect(Number(over.headers.get('retry-after'))).to.be.within(1, 86400);
        expect(parsed).to.equal(6); // the five known ones, then the first new one
        // A re-sync of known numbers needs no quota.
        const resync = await call(owner, 'PUT', { entries: [{ clientId: 'k', phones: known }] });
        expect(resync.status).to.equal(200);
        expect(resync.body.stored).to.deep.equal({ numbers: 5, emails: 0 });
      });
    });

    it('rate-limits address-book requests per account: 429 RATE_LIMITED with Retry-After; other accounts go on', async () => {
      const owner = await signUp(small, receiver);
      const other = await signUp(small, receiver);
      const limit = small.ctx.config.CONTACTS_REQUESTS_PER_HOUR;
      // A body refused by its schema does not count.
      expect(errorCode(await call(owner, 'PUT', { entries: 'all' }))).to.equal('VALIDATION_FAILED');
      for (let i = 0; i < limit; i++) {
        const res = await call(owner, i % 2 === 0 ? 'DELETE' : 'PUT', i % 2 === 0 ? undefined : { entries: [] });
        expect(res.status, `request ${i + 1}`).to.equal(200);
      }
      const limited = await call(owner, 'PATCH', { add: [{ phones: [validTestPhone()] }] });
      expect(limited.status).to.equal(429);
      expect(errorCode(limited)).to.equal('RATE_LIMITED');
      expect(limited.body.error.details).to.deep.equal({ limit: 'contacts' });
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 3600);
      expect(limited.body.error.retryAfter).to.equal(retryAfter);
      expect(await store.exists(keys.userBook(owner.userId))).to.equal(0);
      expect(errorCode(await call(owner, 'DELETE'))).to.equal('RATE_LIMITED');
      expect((await call(other, 'DELETE')).status).to.equal(200);
    });
  });
});
