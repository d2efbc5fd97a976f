import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { keys } from '../../server/keys.js';
import type { ClientSocket } from '../support/hub.js';
import { keysMentioning } from '../support/redisScan.js';
import { createUser, testPhone, type TestUser } from '../support/users.js';
import { ack, connectDevice, errorCode, ok, sleep, type Device, type FactLog } from '../support/calls.js';
import { callsFixture, type CallsFixture } from '../support/fixtures.js';

interface Party { userId: string; phone: string | null; displayName: string | null }
interface InviteAck { callId: string; role: string; state: string; glare: boolean; endReason?: string; peer: Party }

const QUOTA = 4;

let mobileSeq = 0;
/** A valid UK mobile number (address-book uploads keep only numbers libphonenumber deems valid). */
const mobile = () => `+447400${String((process.pid * 31 + ++mobileSeq) % 1_000_000).padStart(6, '0')}`;

/**
 * What calling reveals about other users, and what a call leaves behind
 * about an erased account. The final-report window is long here (30 s), so
 * every call's fact is still pending while a test runs.
 */
describe('1:1 calls: privacy', function () {
  this.timeout(20_000);
  let hub: Hub;
  let facts: FactLog;
  let fixture: CallsFixture | undefined;
  const open: ClientSocket[] = [];

  before(async () => {
    fixture = await callsFixture({ CALL_FINAL_REPORT_S: '30', DISCOVERY_NEW_NUMBERS_PER_DAY: String(QUOTA) });
    ({ hub, facts } = fixture);
  });
  after(() => fixture?.stop());
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  const connect = (user: TestUser) => connectDevice(hub, user, open);
  const newUser = async (displayName?: string) => connect(await createUser(hub, { phone: mobile(), ...(displayName ? { displayName } : {}) }));
  const quotaUsed = async (userId: string) => Number((await hub.ctx.redis.get(keys.userQuota(userId, 'discovery'))) ?? 0);
  const byPhone = (from: Device, phone: string) => ack(from.socket, 'call:invite', { to: { phone } });

  describe('calling by number', () => {
    it('a busy caller is refused before any number is looked up: a user\'s number and a stranger\'s get the same answer', async () => {
      const mallory = await newUser();
      // Mallory keeps herself busy with a call to an account that is never online.
      const decoy = await createUser(hub);
      const held = await ok<InviteAck>(mallory.socket, 'call:invite', { to: { userId: decoy.userId } });
      expect(held.state).to.equal('inviting');
      const target = await newUser();

      const real = await byPhone(mallory, target.user.phone);
      const stranger = await byPhone(mallory, testPhone());
      const busy = { ok: false, error: { code: 'CALL_INVALID_STATE', message: 'You are already in a call', details: { callId: held.callId } } };
      expect(real).to.deep.equal(busy);
      expect(stranger).to.deep.equal(busy);
      expect(await quotaUsed(mallory.user.userId), 'nothing looked up, nothing charged').to.equal(0);
      await sleep(100);
      expect(target.inbox.all('call:incoming')).to.deep.equal([]);
      await ok(mallory.socket, 'call:cancel', { callId: held.callId });
    });

    it('a crossing invite by number still answers the call ringing the caller, for free', async () => {
      const a = await newUser();
      const b = await newUser();
      const { callId } = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
      await b.inbox.next('call:incoming', callId);
      const crossing = await ok<InviteAck>(b.socket, 'call:invite', { to: { phone: a.user.phone } });
      expect(crossing).to.include({ callId, role: 'callee', state: 'answered', glare: true });
      expect(crossing.peer).to.deep.equal({ userId: a.user.userId, phone: a.user.phone, displayName: a.user.displayName });
      expect(await quotaUsed(b.user.userId)).to.equal(0);
      await a.inbox.next('call:accepted', callId);
      await ok(a.socket, 'call:hangup', { callId });
    });

    it('charges new numbers to the daily discovery quota; numbers in the address book or already checked are free', async () => {
      const a = await newUser();
      const inBook = await newUser();
      const other = await newUser();
      const put = await fetch(`${hub.url}/v1/contacts`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${a.user.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ entries: [{ clientId: 'c1', phones: [inBook.user.phone] }] }),
      });
      expect(put.status).to.equal(200);
      expect(await quotaUsed(a.user.userId), 'the upload itself').to.equal(1);

      const call = async (phone: string) => {
        const res = await byPhone(a, phone);
        if (res.ok) await ok(a.socket, 'call:cancel', { callId: res.callId });
        return res.ok ? 'ok' : res.error.code;
      };
      expect(await call(inBook.user.phone)).to.equal('ok');
      expect(await quotaUsed(a.user.userId), 'a number in the address book').to.equal(1);
      expect(await call(other.user.phone)).to.equal('ok');
      expect(await quotaUsed(a.user.userId)).to.equal(2);
      expect(await call(other.user.phone)).to.equal('ok');
      expect(await quotaUsed(a.user.userId), 'a number already checked').to.equal(2);
      expect(await call(testPhone())).to.equal('CALLEE_NOT_FOUND');
      expect(await call(testPhone())).to.equal('CALLEE_NOT_FOUND');
      expect(await quotaUsed(a.user.userId), 'numbers without an account cost too').to.equal(QUOTA);

      const stranger = await newUser();
      const refused = await byPhone(a, stranger.user.phone);
      expect(refused.ok).to.equal(false);
      if (!refused.ok) {
        expect(refused.error.code).to.equal('DISCOVERY_QUOTA_EXCEEDED');
        expect(refused.error.details).to.deep.equal({ newNumbers: 1, remaining: 0 });
        expect((refused.error as { retryAfter?: number }).retryAfter).to.be.within(1, 86400);
      }
      expect(await call(testPhone())).to.equal('DISCOVERY_QUOTA_EXCEEDED');
      await sleep(100);
      expect(stranger.inbox.all('call:incoming'), 'the refused number was not rung').to.deep.equal([]);
      // Known numbers, and user ids, still work.
      expect(await call(inBook.user.phone)).to.equal('ok');
      expect(await call(other.user.phone)).to.equal('ok');
      const byId = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: stranger.user.userId } });
      await ok(a.socket, 'call:cancel', { callId: byId.callId });
      // Calling one's own number costs nothing either.
      expect(await errorCode(a.socket, 'call:invite', { to: { phone: a.user.phone } })).to.equal('CALL_SELF');
      expect(await quotaUsed(a.user.userId)).to.equal(QUOTA);
    });
  });

  describe('what the caller is shown', () => {
    it('a caller who named the callee by user id gets the id and display name, never the number', async () => {
      const a = await newUser('Alice');
      const b = await newUser('Bob');
      const inv = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
      expect(inv.peer).to.deep.equal({ userId: b.user.userId, phone: null, displayName: 'Bob' });
      const view = await ok<{ call: { peer: Party } }>(a.socket, 'call:state', { callId: inv.callId });
      expect(view.call.peer).to.deep.equal({ userId: b.user.userId, phone: null, displayName: 'Bob' });
      // The callee is shown the caller's verified number, as the ring did.
      const incoming = await b.inbox.next<{ caller: Party }>('call:incoming', inv.callId);
      expect(incoming.caller.phone).to.equal(a.user.phone);
      expect((await ok<{ call: { peer: Party } }>(b.socket, 'call:state', { callId: inv.callId })).call.peer.phone).to.equal(a.user.phone);
      await ok(b.socket, 'call:accept', { callId: inv.callId });
      expect((await ok<{ calls: { peer: Party }[] }>(a.socket, 'call:list', {})).calls[0]?.peer.phone).to.equal(null);

      // Busy: the refusal does not carry the number either.
      const c = await newUser('Carol');
      const refused = await ok<InviteAck>(c.socket, 'call:invite', { to: { userId: b.user.userId } });
      expect(refused).to.include({ state: 'ended', endReason: 'busy' });
      expect(refused.peer).to.deep.equal({ userId: b.user.userId, phone: null, displayName: 'Bob' });
      await ok(a.socket, 'call:hangup', { callId: inv.callId });
    });

    it('a caller who dialled the number sees it', async () => {
      const a = await newUser();
      const b = await newUser('Bob');
      const inv = await ok<InviteAck>(a.socket, 'call:invite', { to: { phone: b.user.phone } });
      expect(inv.peer).to.deep.equal({ userId: b.user.userId, phone: b.user.phone, displayName: 'Bob' });
      const view = await ok<{ call: { peer: Party } }>(a.socket, 'call:state', { callId: inv.callId });
      expect(view.call.peer.phone).to.equal(b.user.phone);
      await ok(a.socket, 'call:cancel', { callId: inv.callId });
    });
  });

  describe('account erasure', () => {
    it('removes every call record naming the user, after emitting the facts still pending', async () => {
      const a = await newUser();
      const b = await newUser();
      const c = await newUser();
      // An earlier call of b's that ended (declined); its fact waits for the final-report window.
      const earlier = await ok<InviteAck>(b.socket, 'call:invite', { to: { phone: c.user.phone } });
      await c.inbox.next('call:incoming', earlier.callId);
      await ok(c.socket, 'call:reject', { callId: earlier.callId });
      await b.inbox.next('call:ended', earlier.callId);
      // b called by number: the checked number is remembered under b's account.
      expect(await hub.ctx.redis.exists(keys.userQuotaSeen(b.user.userId, 'discovery'))).to.equal(1);
      // And b is in a live call with a.
      const live = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: b.user.userId } });
      await b.inbox.next('call:incoming', live.callId);
      await ok(b.socket, 'call:accept', { callId: live.callId });
      await a.inbox.next('call:accepted', live.callId);
      expect(await keysMentioning(hub.ctx.redis, [b.user.userId]), 'call keys name b before the erasure').to.include.members([
        keys.call(earlier.callId), keys.call(live.callId), keys.userCall(b.user.userId),
      ]);
      expect(facts.of(earlier.callId)).to.deep.equal([]);

      const res = await fetch(`${hub.url}/v1/me`, { method: 'DELETE', headers: { authorization: `Bearer ${b.user.accessToken}` } });
      expect(res.status).to.equal(200);
      expect((await a.inbox.next<{ reason: string }>('call:ended', live.callId)).reason).to.equal('party_lost');

      // Both facts come out now, long before the 30 s window, each once, with b's id for the CDR to pseudonymise.
      const [earlierFact, liveFact] = await Promise.all([facts.next(earlier.callId, 5000), facts.next(live.callId, 5000)]);
      expect(earlierFact).to.include({ disposition: 'DECLINED', endReason: 'declined' });
      expect(earlierFact.parties.map((p) => p.userId)).to.deep.equal([b.user.userId, c.user.userId]);
      expect(liveFact).to.include({ endReason: 'party_lost', hangupBy: 'system' });
      // Identity's erasure tombstone (keys.userErased) names the user on purpose, for a while; nothing else may.
      let left: string[] = [];
      for (const deadline = Date.now() + 3000; Date.now() < deadline; await sleep(50)) {
        left = (await keysMentioning(hub.ctx.redis, [b.user.userId])).filter((k) => k !== keys.userErased(b.user.userId));
        if (left.length === 0) break;
      }
      expect(left, 'keys still naming the erased user').to.deep.equal([]);
      await sleep(100);
      expect(facts.of(earlier.callId)).to.have.length(1);
      expect(facts.of(live.callId)).to.have.length(1);
      // The other parties see those calls as gone; both are free to call again.
      expect(await errorCode(c.socket, 'call:state', { callId: earlier.callId })).to.equal('CALL_NOT_FOUND');
      expect(await errorCode(a.socket, 'call:state', { callId: live.callId })).to.equal('CALL_NOT_FOUND');
      const next = await ok<InviteAck>(a.socket, 'call:invite', { to: { userId: c.user.userId } });
      await ok(a.socket, 'call:cancel', { callId: next.callId });
    });
  });
});
