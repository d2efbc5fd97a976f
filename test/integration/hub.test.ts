import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import { encodeProfile } from '../../server/identity/Accounts.js';
import { keys } from '../../server/keys.js';
import { TestRedis } from '../support/redis.js';
import { connectSocket, request, startTestHub } from '../support/hub.js';
import { testPhone } from '../support/users.js';

describe('hub foundation', () => {
  let redis: TestRedis;
  let hub: Hub;

  before(async () => {
    redis = await TestRedis.start();
    hub = await startTestHub(redis.url);
  });
  after(async () => {
    await hub?.close();
    await redis?.stop();
  });

  /** Sessions exist only for accounts: a minimal profile under a chosen id. */
  async function account(userId: string) {
    await hub.ctx.redis.hset(keys.user(userId), encodeProfile({ userId, phone: testPhone(), displayName: null, createdAt: Date.now() }));
  }

  async function signedIn(userId: string) {
    await account(userId);
    const session = await hub.ctx.sessions.create(userId, `dev-${userId}`);
    return hub.ctx.tokens.issue({ userId, sessionId: session.sessionId, deviceId: session.deviceId }).token;
  }

  it('reports ready on /healthz with Redis checked', async () => {
    const res = await fetch(`${hub.url}/healthz`);
    const body = (await res.json()) as { ok: boolean; checks: Record<string, { ok: boolean }> };
    expect(res.status).to.equal(200);
    expect(body.checks.redis?.ok).to.equal(true);
  });

  it('answers unknown routes with a stable error code', async () => {
    const res = await fetch(`${hub.url}/nope`);
    expect(res.status).to.equal(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('NOT_FOUND');
  });

  it('refuses a socket without a token or with a forged one', async () => {
    const noToken = await connectSocket(hub.url, undefined).catch((e: { data?: { code: string } }) => e);
    expect((noToken as { data?: { code: string } }).data?.code).to.equal('UNAUTHENTICATED');
    const forged = await connectSocket(hub.url, 'eyJhbGciOiJIUzI1NiJ9.e30.x').catch((e: { data?: { code: string } }) => e);
    expect((forged as { data?: { code: string } }).data?.code).to.equal('TOKEN_INVALID');
  });

  it('refuses a token whose session was revoked', async () => {
    await account('u-revoked');
    const session = await hub.ctx.sessions.create('u-revoked', 'dev1');
    const { token } = hub.ctx.tokens.issue({ userId: 'u-revoked', sessionId: session.sessionId, deviceId: 'dev1' });
    await hub.ctx.sessions.revoke('u-revoked', session.sessionId);
    const err = await connectSocket(hub.url, token).catch((e: { data?: { code: string } }) => e);
    expect((err as { data?: { code: string } }).data?.code).to.equal('SESSION_REVOKED');
  });

  it('acks requests, rejects unknown events and bad payloads with codes, and keeps serving', async () => {
    const socket = await connectSocket(hub.url, await signedIn('u1'));
    try {
      const pong = await request<{ ok: boolean; serverTime: number }>(socket, 'session:ping', {});
      expect(pong.ok).to.equal(true);
      expect(pong.serverTime).to.be.a('number');
      const unknown = await request<{ ok: boolean; error: { code: string } }>(socket, 'nope:nope', {});
      expect(unknown).to.deep.include({ ok: false });
      expect(unknown.error.code).to.equal('UNKNOWN_EVENT');
      const bad = await request<{ ok: boolean; error: { code: string } }>(socket, 'session:ping', { extra: 1 });
      expect(bad.error.code).to.equal('VALIDATION_FAILED');
      const again = await request<{ ok: boolean }>(socket, 'session:ping', {});
      expect(again.ok).to.equal(true);
    } finally {
      socket.close();
    }
  });

  it('disconnects a flooding socket before its excess events reach any handler, without affecting another user', async () => {
    // Long-polling batches thousands of events into a few POSTs: the worst case.
    const { io } = await import('socket.io-client');
    const flooder = io(hub.url, { auth: { token: await signedIn('flood') }, transports: ['polling'], upgrade: false, reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => { flooder.once('connect', resolve); flooder.once('connect_error', reject); });
    const bystander = await connectSocket(hub.url, await signedIn('calm'));
    const admin = redis.client();
    const getCalls = async () => Number((await admin.info('commandstats')).match(/cmdstat_get:calls=(\d+)/)?.[1] ?? 0);
    const before = await getCalls();
    const closing = new Promise<{ reason: string }>((resolve) => flooder.once('session:closing', resolve));
    // call:list reads the user's call slot (one GET): a handler's visible side effect.
    for (let i = 0; i < 3000; i++) flooder.emit('call:list' as never, {} as never, (() => undefined) as never);
    expect((await closing).reason).to.equal('rate_limited');
    await new Promise((r) => setTimeout(r, 200));
    const handled = (await getCalls()) - before;
    expect(handled).to.be.at.most(hub.ctx.config.SOCKET_EVENTS_PER_10S + 5);
    const pong = await request<{ ok: boolean }>(bystander, 'session:ping', {});
    expect(pong.ok).to.equal(true);
    admin.disconnect();
    flooder.close();
    bystander.close();
  });

  it('answers a numeric event name with UNKNOWN_EVENT and keeps running', async () => {
    const socket = await connectSocket(hub.url, await signedIn('numeric'));
    const res = await new Promise<{ ok: boolean; error: { code: string } }>((resolve) => {
      (socket as unknown as { emit(e: number, p: unknown, ack: (r: never) => void): void }).emit(42, {}, resolve);
    });
    expect(res.error.code).to.equal('UNKNOWN_EVENT');
    const pong = await request<{ ok: boolean }>(socket, 'session:ping', {});
    expect(pong.ok).to.equal(true);
    socket.close();
  });

  it('closes a socket when its access token expires, with a reason', async () => {
    await account('u-exp');
    const session = await hub.ctx.sessions.create('u-exp', 'dev1');
    const shortHub = await startTestHub(redis.url, {
      ACCESS_TOKEN_TTL_S: '30',
      JWT_KEYS: [...hub.ctx.config.JWT_KEYS].map(([k, v]) => `${k}:${v}`).join(','),
    });
    try {
      const { token } = shortHub.ctx.tokens.issue({ userId: 'u-exp', sessionId: session.sessionId, deviceId: 'dev1' });
      const socket = await connectSocket(shortHub.url, token);
      // Pretend the token is about to lapse by refreshing with one that expires within 1-2 s
      // (exp has one-second resolution: 2 keeps it valid when the refresh is checked).
      const jwt = (await import('jsonwebtoken')).default;
      const soon = jwt.sign({ sid: session.sessionId, did: 'dev1' }, hub.ctx.config.JWT_KEYS.get('k1')!, {
        keyid: 'k1', subject: 'u-exp', issuer: 'callhub', audience: 'callhub-clients', expiresIn: 2,
      });
      // Listen first: JWT expiry has one-second resolution, so the token may lapse a
      // few ms after the refresh is acked, and both packets can arrive in one read.
      const closing = new Promise<{ reason: string }>((resolve) => socket.once('session:closing', resolve));
      const refreshed = await request<{ ok: boolean }>(socket, 'session:refresh', { accessToken: soon });
      expect(refreshed.ok).to.equal(true);
      expect((await closing).reason).to.equal('token_expired');
      socket.close();
    } finally {
      await shortHub.close();
    }
  });

  it('exposes Prometheus metrics without personal labels', async () => {
    const socket = await connectSocket(hub.url, await signedIn('metrics-user'));
    hub.ctx.events.emit('call:ended', {
      callId: 'c-metrics', kind: 'p2p', parties: [{ userId: 'metrics-user', role: 'caller' }],
      createdAt: 1000, answeredAt: 3000, endedAt: 63000, disposition: 'ANSWERED', endReason: 'completed',
      hangupBy: 'caller', mediaPath: 'direct', participantCount: 2,
    });
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    socket.close();
    expect(text).to.match(/callhub_sockets_connected\{hub="[^"]+"\} [1-9]/);
    expect(text).to.contain('callhub_calls_ended_total{kind="p2p",disposition="ANSWERED",media_path="direct"');
    expect(text).to.match(/callhub_call_setup_seconds_sum\{hub="[^"]+"\} 2/);
    expect(text).not.to.contain('metrics-user');
  });
});
