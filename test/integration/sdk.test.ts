import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { CallhubClient } from '../../shared/client/CallhubClient.js';
import { ClientError } from '../../shared/client/ClientError.js';
import { MemoryTokenStore, decodeJwtClaims } from '../../shared/client/TokenStore.js';
import { identityRoutes } from '../../shared/protocol/identity.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { WebhookReceiver } from '../support/webhookReceiver.js';
import { validTestPhone as testPhone } from '../support/signup.js';
import { freePort } from '../support/ports.js';

describe('client SDK (Node, no media)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let inbox: WebhookReceiver;
  let hub: Hub;
  const clients: CallhubClient[] = [];
  let hubEnv: Record<string, string>;

  before(async () => {
    redis = await TestRedis.start();
    inbox = await WebhookReceiver.start();
    // Every sign-in of this file comes from 127.0.0.1: lift the per-IP and per-prefix code limits.
    hubEnv = { ...inbox.hubEnv(), OTP_RESEND_COOLDOWN_S: '0', OTP_PER_IP_PER_HOUR: '10000', OTP_PER_PREFIX_PER_HOUR: '10000' };
    hub = await startTestHub(redis.url, hubEnv);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await hub?.close();
    await inbox?.close();
    await redis?.stop();
  });

  function newClient(url = hub.url, opts: Partial<ConstructorParameters<typeof CallhubClient>[0]> = {}): CallhubClient {
    const client = new CallhubClient({ url, device: { platform: 'desktop', name: 'sdk test' }, ...opts });
    clients.push(client);
    return client;
  }

  async function signIn(client: CallhubClient, phone = testPhone(), displayName = 'Ada'): Promise<string> {
    await client.requestCode(phone);
    await client.verify(phone, (await inbox.waitForCode(phone)).code, { displayName });
    return phone;
  }

  it('signs in with the code from the webhook, stores the session and makes typed requests', async () => {
    const store = new MemoryTokenStore();
    const client = newClient(hub.url, { tokens: store });
    const phone = testPhone();
    const sent = await client.requestCode(phone);
    expect(sent.codeLength).to.equal(6);
    const res = await client.verify(phone, (await inbox.waitForCode(phone)).code, { displayName: 'Grace' });
    expect(res.newUser).to.equal(true);
    expect(res.user.displayName).to.equal('Grace');
    expect(store.load()?.userId).to.equal(res.user.userId);
    expect(store.load()?.refreshToken).to.be.a('string');

    await client.connect();
    expect(client.state).to.equal('connected');
    const pong = await client.request('session:ping', {});
    expect(pong.serverTime).to.be.a('number');
    expect(pong).to.not.have.property('ok');
  });

  it('rejects with a ClientError carrying the server code', async () => {
    const client = newClient();
    const wrong = await client.verify(testPhone(), '000000').catch((e: unknown) => e);
    expect(wrong).to.be.instanceOf(ClientError);
    expect((wrong as ClientError).code).to.equal('CODE_EXPIRED');

    await signIn(client);
    await client.connect();
    const bad = await client.request('session:ping', { extra: 1 } as never).catch((e: unknown) => e);
    expect(bad).to.be.instanceOf(ClientError);
    expect((bad as ClientError).code).to.equal('VALIDATION_FAILED');
    const unknown = await client.request('call:state', { callId: 'nope' }).catch((e: unknown) => e);
    expect((unknown as ClientError).code).to.be.oneOf(['CALL_NOT_FOUND', 'UNKNOWN_EVENT']);
  });

  it('refreshes the access token before it expires and hands it to the live socket', async () => {
    const store = new MemoryTokenStore();
    // With a 30 s token and a 29.5 s margin the refresh is due half a second after sign-in.
    const shortHub = await startTestHub(redis.url, { ...hubEnv, ACCESS_TOKEN_TTL_S: '30', JWT_KEYS: keysOf(hub), IDENTITY_HMAC_KEYS: hmacKeysOf(hub) });
    try {
      const c2 = newClient(shortHub.url, { tokens: store, refreshMarginMs: 29_500 });
      const phone = testPhone();
      await c2.requestCode(phone);
      await c2.verify(phone, (await inbox.waitForCode(phone)).code);
      const first = store.load()!;
      const errors: unknown[] = [];
      c2.on('error', (e) => errors.push(e));
      await c2.connect();
      const sock = c2.connection!;
      await waitFor(() => store.load()!.refreshToken !== first.refreshToken, 5000);
      const second = store.load()!;
      expect(decodeJwtClaims(second.accessToken).exp).to.be.at.least(decodeJwtClaims(first.accessToken).exp!);
      expect(decodeJwtClaims(second.accessToken).sid).to.equal(decodeJwtClaims(first.accessToken).sid);
      // The same socket is still up and usable, and the spent refresh token is refused.
      expect(c2.connection).to.equal(sock);
      expect(sock.connected).to.equal(true);
      expect((await c2.request('session:ping', {})).serverTime).to.be.a('number');
      expect(errors).to.deep.equal([]); // session:refresh was accepted by the hub
      // Replaying the spent refresh token revokes the session; the client notices and signs out.
      const signedOut = c2.next('signedOut', 5000);
      const replay = await c2.http.route(identityRoutes.authRefresh, { refreshToken: first.refreshToken! }).catch((e: unknown) => e);
      expect((replay as ClientError).code).to.equal('REFRESH_TOKEN_REUSED');
      expect((await signedOut)[0]).to.equal('session_revoked');
    } finally {
      await shortHub.close();
    }
  });

  it('reconnects by itself after the hub restarts, and resumes requests', async () => {
    const port = await freePort();
    const env = { ...hubEnv, HUB_PORT: String(port), JWT_KEYS: keysOf(hub), IDENTITY_HMAC_KEYS: hmacKeysOf(hub) };
    let h1: Hub | undefined = await startTestHub(redis.url, env);
    let h2: Hub | undefined;
    try {
      const client = newClient(h1.url);
      await signIn(client);
      await client.connect();
      const states: string[] = [];
      client.on('state', (s) => states.push(s));
      await h1.close();
      h1 = undefined;
      await waitFor(() => client.state === 'reconnecting', 5000);
      h2 = await startTestHub(redis.url, env);
      await waitFor(() => client.state === 'connected', 10_000);
      expect(states).to.include('reconnecting');
      expect((await client.request('session:ping', {})).serverTime).to.be.a('number');
    } finally {
      await h1?.close();
      await h2?.close();
    }
  });

  it('ends the session locally when it is revoked elsewhere (sign-out on the hub)', async () => {
    const store = new MemoryTokenStore();
    const client = newClient(hub.url, { tokens: store });
    await signIn(client);
    await client.connect();
    const signedOut = client.next('signedOut', 5000);
    // Another copy of the same session signs out: the hub closes this socket with session_revoked.
    const other = newClient(hub.url);
    await other.restore({ ...store.load()! });
    await other.signOut();
    const [reason] = await signedOut;
    expect(reason).to.equal('session_revoked');
    expect(client.state).to.equal('signedOut');
    expect(store.load()).to.equal(null);
  });

  it('delivers typed notices to listeners registered before connecting, and stops after unsubscribing', async () => {
    const client = newClient();
    await signIn(client);
    const seen: { userId: string; clientIds: string[] }[] = [];
    const off = client.onNotice('contact:joined', (p) => seen.push(p));
    await client.connect();
    const [friend, other] = [testPhone(), testPhone()];
    await client.uploadContacts([{ clientId: 'friend-1', name: 'Friend', phones: [friend] }, { clientId: 'other-1', phones: [other] }]);
    const friendClient = newClient();
    await signIn(friendClient, friend, 'Friend');
    await waitFor(() => seen.length === 1, 5000);
    expect(seen[0]!.clientIds).to.deep.equal(['friend-1']);
    expect(seen[0]!.userId).to.equal(friendClient.userId);
    off();
    // A second join after unsubscribing reaches the socket but not the listener.
    const raw = new Promise((resolve) => client.onNotice('contact:joined', resolve));
    await signIn(newClient(), other, 'Other');
    await raw;
    expect(seen).to.have.length(1);
  });

  it('rings an incoming call with the caller\'s number and name, and declines it through the call object', async () => {
    const callee = newClient();
    await signIn(callee, testPhone(), 'Callee');
    await callee.connect();
    const callerPhone = testPhone();
    const caller = newClient();
    await signIn(caller, callerPhone, 'Caller Name');
    await caller.connect();
    const incoming = callee.calls.next('incoming', 5000);
    // The caller side without WebRTC (Node): the raw invite, as typed by the shared protocol.
    const invite = await caller.request('call:invite', { to: { userId: callee.userId! } });
    const [call] = await incoming;
    expect(call.id).to.equal(invite.callId);
    expect(call.role).to.equal('callee');
    expect(call.state).to.equal('ringing');
    expect(call.peer).to.deep.include({ userId: caller.userId, phone: callerPhone, displayName: 'Caller Name' });
    const ended = new Promise<string>((resolve) => caller.onNotice('call:ended', (p) => resolve(p.reason)));
    await call.decline();
    expect(call.state).to.equal('ended');
    expect(call.endReason).to.equal('declined');
    expect(await ended).to.equal('declined');
    expect(callee.calls.active).to.deep.equal([]);
  });

  it('refuses to place a call where WebRTC is missing, with a clear code and no invite sent', async () => {
    const client = newClient();
    await signIn(client);
    await client.connect();
    const err = await client.calls.call({ phone: testPhone() }).catch((e: unknown) => e);
    expect((err as ClientError).code).to.equal('MEDIA');
    expect((await client.request('call:list', {})).calls).to.deep.equal([]);
  });
});

function keysOf(hub: Hub): string {
  return [...hub.ctx.config.JWT_KEYS].map(([k, v]) => `${k}:${v}`).join(',');
}

function hmacKeysOf(hub: Hub): string {
  return [...hub.ctx.config.IDENTITY_HMAC_KEYS].map(([k, v]) => `${k}:${v}`).join(',');
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

