import { expect } from 'chai';
import type { Hub } from '../../server/Hub.js';
import type { RelayNode } from '../../relay/RelayNode.js';
import { CallhubClient } from '../../shared/client/CallhubClient.js';
import type { Conference } from '../../shared/client/Conference.js';
import type { MediaEnvironment } from '../../shared/client/MediaEnvironment.js';
import type { RelayJoiner } from '../../shared/client/relayTypes.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub, type ClientSocket } from '../support/hub.js';
import { createUser } from '../support/users.js';
import { connectDevice, type Device } from '../support/conference.js';
import { fakeSdp, ok } from '../support/calls.js';
import { TEST_RELAY_SECRET, eventually, startTestRelay } from '../support/relay.js';

/**
 * Races between the app and the hub while the SDK awaits the microphone or
 * the relay module. Node has no WebRTC, so the SDK gets a stand-in for the
 * browser's primitives (FakeBrowser below) whose getUserMedia resolves only
 * when the test says so, and which counts peer connections and live tracks.
 * The hub, the relay node and the sockets are real.
 */
describe('client SDK races (cancel or end while media is being set up)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let relayNode: RelayNode;
  let hub: Hub;
  const open: ClientSocket[] = [];
  const clients: CallhubClient[] = [];

  before(async () => {
    redis = await TestRedis.start();
    relayNode = await startTestRelay(redis.url, { RELAY_ID: 'sdk-races-node' });
    hub = await startTestHub(redis.url, {
      RELAY_SECRET: TEST_RELAY_SECRET,
      RELAY_DIRECTORY_REFRESH_MS: '200',
      RELAY_REQUEST_TIMEOUT_MS: '3000',
      CALL_FINAL_REPORT_S: '0',
    });
    await eventually(() => hub.ctx.relay!.service.connectedNodes.length === 1, 'link to the relay node');
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const s of open.splice(0)) s.close();
  });
  after(async () => {
    await hub?.close();
    await relayNode?.close();
    await redis?.stop();
  });

  /** A raw-socket user (the other party, no media). */
  const rawUser = async (): Promise<Device> => connectDevice(hub, await createUser(hub), open);

  /** An SDK client on the fake browser, signed in as a fresh user. */
  async function sdkUser(browser: FakeBrowser, relay?: () => Promise<RelayJoiner>): Promise<{ client: CallhubClient; errors: unknown[] }> {
    const user = await createUser(hub);
    const client = new CallhubClient({ url: hub.url, device: { platform: 'desktop', name: 'sdk races' }, media: browser.env, ...(relay ? { relay } : {}) });
    clients.push(client);
    await client.restore({ accessToken: user.accessToken, userId: user.userId, deviceId: user.deviceId });
    await client.connect();
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    return { client, errors };
  }

  /** A raw-socket caller rings the SDK user `b`; the incoming Call with its reported errors. */
  async function ringing(b: CallhubClient) {
    const caller = await rawUser();
    const incoming = b.calls.next('incoming', 5000);
    const { callId } = await ok<{ callId: string }>(caller.socket, 'call:invite', { to: { userId: b.userId }, sdp: fakeSdp() });
    const [call] = await incoming;
    const errors: unknown[] = [];
    call.on('error', (e) => errors.push(e));
    return { caller, callId, call, errors };
  }

  /** An invitation rings on `b`; it starts joining and waits for the microphone. */
  async function joiningConference(host: Device, b: CallhubClient, browser: FakeBrowser): Promise<{ conf: Conference; joining: Promise<unknown>; conferenceId: string; errors: unknown[] }> {
    const incoming = b.conferences.next('incoming', 5000);
    const { conferenceId } = await ok<{ conferenceId: string }>(host.socket, 'conference:create', { invite: [{ userId: b.userId }] });
    const [conf] = await incoming;
    const errors: unknown[] = [];
    conf.on('error', (e) => errors.push(e));
    const joining = conf.join().then(() => 'resolved', (e: unknown) => e);
    await eventually(() => browser.pendingMedia === 1, 'getUserMedia to be called');
    expect(conf.phase).to.equal('joining');
    return { conf, joining, conferenceId, errors };
  }

  it('stops a microphone that opens after the host ended the conference', async () => {
    const browser = new FakeBrowser();
    let relayLoads = 0;
    const { client: b, errors: clientErrors } = await sdkUser(browser, async () => {
      relayLoads += 1;
      return (await import('../../shared/client/RelayMedia.js')).relayJoiner();
    });
    const host = await rawUser();
    const { conf, joining, conferenceId, errors } = await joiningConference(host, b, browser);

    await ok(host.socket, 'conference:end', { conferenceId });
    await eventually(() => conf.phase === 'ended', 'conference:ended to reach the SDK');
    const stream = browser.grantMedia();
    expect(await joining).to.equal('resolved');

    expect(stream.getTracks().map((t) => t.readyState)).to.deep.equal(['ended']);
    expect(browser.liveTracks()).to.equal(0);
    expect(conf.localStream).to.equal(undefined);
    expect(conf.exitReason).to.equal('ended_by_host');
    expect(relayLoads).to.equal(0); // nothing is joined for an ended conference
    expect(errors).to.deep.equal([]);
    expect(clientErrors).to.deep.equal([]);
  });

  it('stops a microphone that opens after the user left the conference', async () => {
    const browser = new FakeBrowser();
    const { client: b } = await sdkUser(browser);
    const host = await rawUser();
    const { conf, joining, errors } = await joiningConference(host, b, browser);

    await conf.leave();
    expect(conf.phase).to.equal('ended');
    browser.grantMedia();
    expect(await joining).to.equal('resolved');

    expect(browser.liveTracks()).to.equal(0);
    expect(conf.localStream).to.equal(undefined);
    expect(conf.exitReason).to.equal('left');
    expect(errors).to.deep.equal([]);
  });

  it('builds no peer connection and reports no error when the caller cancels while the callee opens its microphone', async () => {
    const browser = new FakeBrowser();
    const { client: b } = await sdkUser(browser);
    const { caller, callId, call, errors } = await ringing(b);
    const accepting = call.accept().then(() => 'resolved', (e: unknown) => e);
    await eventually(() => browser.pendingMedia === 1, 'getUserMedia to be called');

    await ok(caller.socket, 'call:cancel', { callId });
    await eventually(() => call.state === 'ended', 'call:ended to reach the SDK');
    expect(call.endReason).to.equal('cancelled');
    browser.grantMedia();

    expect(await accepting).to.equal('resolved');
    expect(browser.openPeerConnections()).to.equal(0);
    expect(browser.liveTracks()).to.equal(0);
    expect(errors).to.deep.equal([]);
    expect(b.calls.active).to.deep.equal([]);
  });

  it('closes the peer connection and reports no error when the call ends while the answer is being made', async () => {
    const browser = new FakeBrowser();
    const { client: b } = await sdkUser(browser);
    const { caller, callId, call, errors } = await ringing(b);
    browser.holdAnswers = true;
    const accepting = call.accept().then(() => 'resolved', (e: unknown) => e);
    browser.grantMedia();
    await eventually(() => browser.heldAnswers.length === 1, 'the answer to be in the making');

    await ok(caller.socket, 'call:cancel', { callId });
    await eventually(() => call.state === 'ended', 'call:ended to reach the SDK');
    browser.releaseAnswers();

    expect(await accepting).to.equal('resolved');
    expect(browser.peerConnections.length).to.equal(1);
    expect(browser.openPeerConnections()).to.equal(0);
    expect(browser.liveTracks()).to.equal(0);
    expect(errors).to.deep.equal([]);
  });

  it('joins no relay room when the call ends while the relay module loads', async () => {
    const browser = new FakeBrowser();
    let releaseRelay!: () => void;
    const relayGate = new Promise<void>((r) => { releaseRelay = r; });
    let joins = 0;
    const { client: b } = await sdkUser(browser, async () => {
      await relayGate;
      const real = (await import('../../shared/client/RelayMedia.js')).relayJoiner();
      return { join: (...args) => { joins += 1; return real.join(...args); } };
    });
    const { caller, callId, call, errors } = await ringing(b);
    const accepting = call.accept();
    browser.grantMedia();
    await accepting;
    expect(browser.openPeerConnections()).to.equal(1);

    // Direct media failed: the hub moves the call to the relay; the SDK starts loading the relay module.
    const relayed = new Promise<void>((resolve) => b.onNotice('call:relay', (p) => { if (p.callId === callId) resolve(); }));
    await ok(caller.socket, 'call:report', { callId, event: 'ice-failed' });
    await relayed;
    await ok(caller.socket, 'call:hangup', { callId });
    await eventually(() => call.state === 'ended', 'call:ended to reach the SDK');
    releaseRelay();
    await call.moveToRelay(callId); // the move in flight (the same promise), now settled

    expect(joins).to.equal(0);
    expect(browser.openPeerConnections()).to.equal(0);
    expect(browser.liveTracks()).to.equal(0);
    expect(errors).to.deep.equal([]);
  });
});

// --- a stand-in for the browser's WebRTC primitives ---------------------------------

class FakeTrack {
  readonly id = `track-${Math.random().toString(36).slice(2, 10)}`;
  enabled = true;
  readyState: 'live' | 'ended' = 'live';
  constructor(readonly kind: 'audio' | 'video') {}
  stop(): void {
    this.readyState = 'ended';
  }
}

class FakeStream {
  readonly id = `stream-${Math.random().toString(36).slice(2, 10)}`;
  #tracks: FakeTrack[];
  constructor(tracks: FakeTrack[]) {
    this.#tracks = [...tracks];
  }
  getTracks(): FakeTrack[] {
    return [...this.#tracks];
  }
  getAudioTracks(): FakeTrack[] {
    return this.#tracks.filter((t) => t.kind === 'audio');
  }
  getVideoTracks(): FakeTrack[] {
    return this.#tracks.filter((t) => t.kind === 'video');
  }
  addTrack(t: FakeTrack): void {
    this.#tracks.push(t);
  }
  removeTrack(t: FakeTrack): void {
    this.#tracks = this.#tracks.filter((x) => x !== t);
  }
}

/**
 * getUserMedia resolves when the test calls grantMedia(); peer connections
 * are counted (created, closed) and answer SDPs can be held back.
 */
class FakeBrowser {
  readonly peerConnections: { closed: boolean }[] = [];
  readonly tracks: FakeTrack[] = [];
  readonly #pending: ((s: MediaStream) => void)[] = [];
  holdAnswers = false;
  readonly heldAnswers: (() => void)[] = [];
  readonly env: MediaEnvironment;

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const browser = this;
    class FakePeerConnection {
      closed = false;
      signalingState = 'stable';
      connectionState = 'new';
      remoteDescription: unknown = null;
      onicecandidate: unknown = null;
      ontrack: unknown = null;
      onconnectionstatechange: unknown = null;
      constructor() {
        browser.peerConnections.push(this);
      }
      addTrack(): void {}
      async createOffer() {
        return { type: 'offer', sdp: fakeSdp() };
      }
      async createAnswer() {
        if (browser.holdAnswers) await new Promise<void>((r) => browser.heldAnswers.push(r));
        return { type: 'answer', sdp: fakeSdp() };
      }
      async setLocalDescription(d: { type: string }) {
        this.signalingState = d.type === 'offer' ? 'have-local-offer' : 'stable';
      }
      async setRemoteDescription(d: unknown) {
        this.remoteDescription = d;
      }
      async addIceCandidate() {}
      async getStats() {
        return new Map();
      }
      close(): void {
        this.closed = true;
      }
    }
    this.env = {
      RTCPeerConnection: FakePeerConnection as unknown as typeof RTCPeerConnection,
      getUserMedia: () => new Promise<MediaStream>((resolve) => this.#pending.push(resolve)),
      createStream: (tracks) => new FakeStream(tracks as unknown as FakeTrack[]) as unknown as MediaStream,
    };
  }

  get pendingMedia(): number {
    return this.#pending.length;
  }

  /** Resolves the oldest pending getUserMedia with a fresh microphone track. */
  grantMedia(): MediaStream {
    const resolve = this.#pending.shift();
    if (!resolve) throw new Error('no getUserMedia is pending');
    const track = new FakeTrack('audio');
    this.tracks.push(track);
    const stream = new FakeStream([track]) as unknown as MediaStream;
    resolve(stream);
    return stream;
  }

  releaseAnswers(): void {
    this.holdAnswers = false;
    for (const r of this.heldAnswers.splice(0)) r();
  }

  liveTracks(): number {
    return this.tracks.filter((t) => t.readyState === 'live').length;
  }

  openPeerConnections(): number {
    return this.peerConnections.filter((pc) => !pc.closed).length;
  }
}
