import type { ClientRequestName, ServerNoticeName } from '../protocol/events.js';
import { ClientError } from './ClientError.js';
import { Connection, type ConnectionState, type NoticePayload, type RequestPayload, type RequestResult } from './Connection.js';
import { Emitter } from './Emitter.js';
import { identityRoutes, type HttpRouteSpec } from '../protocol/identity.js';
import { contactsRoutes } from '../protocol/contacts.js';
import { HttpApi, type FetchLike, type RouteBody, type RouteReply } from './HttpApi.js';
import { CallManager } from './CallManager.js';
import { ConferenceManager } from './ConferenceManager.js';
import type { RelayJoiner } from './relayTypes.js';
import { defaultMediaEnvironment, type MediaEnvironment } from './MediaEnvironment.js';
import { SDK_VERSION } from './version.js';
import { decodeJwtClaims, MemoryTokenStore, type StoredSession, type TokenStore } from './TokenStore.js';

export type ClientState = 'signedOut' | ConnectionState;

export interface CallhubClientOptions {
  /** Hub base URL (`https://hub.example.com`); in a browser served by the hub, `location.origin`. */
  url: string;
  /** Where the session is kept; memory by default. */
  tokens?: TokenStore;
  /** Reported to the hub at sign-in. */
  device?: { platform: 'ios' | 'android' | 'web' | 'desktop'; name?: string };
  /** Refresh the access token this long before it expires (default: a fifth of its lifetime, 5 s to 60 s). */
  refreshMarginMs?: number;
  /** Timeout of socket requests and HTTP calls (default 10 s). */
  requestTimeoutMs?: number;
  /** fetch implementation (default: the global one). */
  fetch?: FetchLike;
  /** WebRTC primitives (default: the browser's globals; React Native: react-native-webrtc's). */
  media?: MediaEnvironment;
  /**
   * Loads the relay media path (mediasoup-client). Default: the SDK's own
   * `RelayMedia` module, loaded only when a call or conference needs it.
   */
  relay?: () => Promise<RelayJoiner>;
  /** Reported with calls (goes into call records). */
  appVersion?: string;
  /** Test-only switches. */
  testing?: {
    /** Drop every ICE candidate of 1:1 calls so direct media cannot connect (exercises the move to the relay). */
    blockDirectMedia?: boolean;
  };
}

export interface ClientEvents {
  state: (state: ClientState) => void;
  /** The session is gone (signed out, revoked, account deleted); sign in again to continue. */
  signedOut: (reason: string) => void;
  /** Errors not tied to a call: failed background refresh, listener errors. */
  error: (error: unknown) => void;
}

/**
 * The entry point of the SDK: sign-in, the session (kept in a pluggable
 * store, refreshed before it expires), the hub connection (reconnecting by
 * itself) and typed access to every request and notice of the protocol.
 * Calls and conferences build on it (`CallManager`, `ConferenceManager`).
 */
export class CallhubClient extends Emitter<ClientEvents> {
  readonly url: string;
  readonly http: HttpApi;
  /** 1:1 calls: `calls.call(...)`, `calls.on('incoming', ...)`. */
  readonly calls: CallManager;
  /** Conferences: `conferences.create(...)`, `conferences.join(id)`, `conferences.on('incoming', ...)`. */
  readonly conferences: ConferenceManager;
  readonly #opts: CallhubClientOptions;
  readonly #store: TokenStore;
  #session: StoredSession | null = null;
  #connection: Connection | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<void> | undefined;
  #noticeSubs: NoticeSub[] = [];
  #closed = false;
  #connectedListeners = new Set<(info: { first: boolean; recovered: boolean }) => void>();
  #connectedOnce = false;

  constructor(opts: CallhubClientOptions) {
    super();
    this.#opts = opts;
    this.url = opts.url.replace(/\/+$/, '');
    this.#store = opts.tokens ?? new MemoryTokenStore();
    const fetchFn = opts.fetch ?? (globalThis.fetch?.bind(globalThis) as unknown as FetchLike | undefined);
    if (!fetchFn) throw new TypeError('CallhubClient needs fetch (pass options.fetch on engines without it)');
    this.http = new HttpApi(this.url, fetchFn, opts.requestTimeoutMs ?? 10_000);
    this.onListenerError = (err) => this.emit('error', err);
    const platform = opts.device?.platform ?? 'web';
    const media = opts.media ?? defaultMediaEnvironment();
    const relay = opts.relay ?? (async () => (await import('./RelayMedia.js')).relayJoiner());
    const appVersion = opts.appVersion ?? SDK_VERSION;
    this.calls = new CallManager(this, { media, relay, appVersion, platform, blockDirectMedia: opts.testing?.blockDirectMedia === true });
    this.conferences = new ConferenceManager(this, { media, relay, appVersion, platform });
  }

  /** Runs `listener` on every (re)connection of the hub socket; `first` is true for the first one. */
  onConnected(listener: (info: { first: boolean; recovered: boolean }) => void): () => void {
    this.#connectedListeners.add(listener);
    return () => this.#connectedListeners.delete(listener);
  }

  get session(): Readonly<StoredSession> | null {
    return this.#session;
  }

  get userId(): string | undefined {
    return this.#session?.userId;
  }

  get state(): ClientState {
    if (!this.#session) return 'signedOut';
    return this.#connection?.state ?? 'idle';
  }

  get connection(): Connection | undefined {
    return this.#connection;
  }

  // --- sign-in ---------------------------------------------------------------

  /** Asks the hub to send a one-time code to `phone` by SMS or voice call. */
  requestCode(phone: string, channel: 'sms' | 'voice' = 'sms', locale?: string): Promise<RouteReply<typeof identityRoutes.authCode>> {
    return this.http.route(identityRoutes.authCode, locale ? { phone, channel, locale } : { phone, channel });
  }

  /** Proves the number with the code and signs this device in (creating the account on first use); call `connect()` next. */
  async verify(phone: string, code: string, extra: { displayName?: string; age?: number } = {}): Promise<RouteReply<typeof identityRoutes.authVerify>> {
    const device = this.#opts.device ?? { platform: 'web' as const };
    const res = await this.http.route(identityRoutes.authVerify, { phone, code, device, ...extra });
    await this.#adopt({ accessToken: res.accessToken, refreshToken: res.refreshToken, userId: res.user.userId, deviceId: res.device.deviceId });
    return res;
  }

  /** Uses an existing session (from the store, or handed in, e.g. by a test); returns false when there is none. */
  async restore(session?: StoredSession): Promise<boolean> {
    const found = session ?? (await this.#store.load());
    if (!found) return false;
    await this.#adopt(found);
    return true;
  }

  /** Exchanges the refresh token for a new pair; the live socket gets the new access token too. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }

  /** Ends the session on the hub (best effort) and locally. */
  async signOut(): Promise<void> {
    const session = this.#session;
    if (session) await this.http.route(identityRoutes.authLogout, {}, { accessToken: session.accessToken }).catch(() => undefined);
    await this.#endSession('signed_out');
  }

  // --- connection ------------------------------------------------------------

  /** Opens the hub connection (refreshing first if the token is about to lapse). */
  async connect(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) throw new ClientError('CLOSED', 'The client is closed');
    if (!this.#session) throw new ClientError('SIGNED_OUT', 'Sign in first');
    if (this.#expiresInMs() < this.#marginMs() && this.#session.refreshToken) await this.refresh();
    if (!this.#connection) {
      const connection = new Connection({
        url: this.url,
        token: () => this.#session?.accessToken,
        requestTimeoutMs: this.#opts.requestTimeoutMs ?? 10_000,
      });
      connection.on('state', () => this.emit('state', this.state));
      connection.on('connected', ({ recovered }) => {
        const first = !this.#connectedOnce;
        this.#connectedOnce = true;
        for (const l of [...this.#connectedListeners]) {
          try {
            l({ first, recovered });
          } catch (err) {
            this.emit('error', err);
          }
        }
      });
      connection.on('authFailed', () => {
        if (!this.#session?.refreshToken) return;
        this.refresh().then(() => connection.reconnectNow(), (err: unknown) => this.emit('error', err));
      });
      connection.on('sessionEnded', (reason) => void this.#endSession(String(reason)));
      for (const sub of this.#noticeSubs) sub.detach = connection.onNotice(sub.event, sub.listener as (p: unknown) => void);
      this.#connection = connection;
    }
    await this.#connection.open(timeoutMs);
  }

  /** Typed request over the hub connection; rejects with a ClientError carrying the server's code. */
  request<K extends ClientRequestName>(event: K, payload: RequestPayload<K>, timeoutMs?: number): Promise<RequestResult<K>> {
    if (!this.#connection) return Promise.reject(new ClientError('NOT_CONNECTED', 'Call connect() first'));
    return this.#connection.request(event, payload, timeoutMs);
  }

  /** Listens to a server notice, across reconnects; returns the unsubscribe function. */
  onNotice<K extends ServerNoticeName>(event: K, listener: (payload: NoticePayload<K>) => void): () => void {
    const sub: NoticeSub = { event, listener: listener as (p: never) => void };
    sub.detach = this.#connection?.onNotice(event, listener);
    this.#noticeSubs.push(sub);
    return () => {
      this.#noticeSubs = this.#noticeSubs.filter((s) => s !== sub);
      sub.detach?.();
      sub.detach = undefined;
    };
  }

  /** Calls an authenticated route of the shared HTTP protocol, refreshing the token once if the hub says it expired. */
  async api<R extends HttpRouteSpec>(spec: R, body: RouteBody<R>, params?: Record<string, string>): Promise<RouteReply<R>> {
    if (!this.#session) throw new ClientError('SIGNED_OUT', 'Sign in first');
    if (this.#expiresInMs() < 1000 && this.#session.refreshToken) await this.refresh();
    const send = () => this.http.route(spec, body, params ? { accessToken: this.#session?.accessToken, params } : { accessToken: this.#session?.accessToken });
    try {
      return await send();
    } catch (err) {
      if (err instanceof ClientError && err.code === 'TOKEN_EXPIRED' && this.#session?.refreshToken) {
        await this.refresh();
        return send();
      }
      throw err;
    }
  }

  /** Replaces the address book; the reply says which entries are users. */
  uploadContacts(entries: RouteBody<typeof contactsRoutes.contactsPut>['entries']): Promise<RouteReply<typeof contactsRoutes.contactsPut>> {
    return this.api(contactsRoutes.contactsPut, { entries });
  }

  /** Closes the connection and timers; keeps the stored session for the next launch. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.calls.close();
    this.conferences.close();
    clearTimeout(this.#refreshTimer);
    this.#connection?.close();
    this.#connection = undefined;
    this.emit('state', 'closed');
    this.removeAllListeners();
  }

  // --- internals ---------------------------------------------------------------

  async #adopt(session: StoredSession): Promise<void> {
    this.#session = { ...session };
    await this.#store.save(this.#session);
    this.#scheduleRefresh();
    this.emit('state', this.state);
  }

  async #refresh(): Promise<void> {
    const session = this.#session;
    if (!session) throw new ClientError('SIGNED_OUT', 'Sign in first');
    if (!session.refreshToken) throw new ClientError('REFRESH_TOKEN_INVALID', 'This session cannot be refreshed');
    let res: RouteReply<typeof identityRoutes.authRefresh>;
    try {
      res = await this.http.route(identityRoutes.authRefresh, { refreshToken: session.refreshToken });
    } catch (err) {
      if (err instanceof ClientError && (err.code === 'REFRESH_TOKEN_INVALID' || err.code === 'REFRESH_TOKEN_REUSED' || err.code === 'SESSION_REVOKED' || err.code === 'ACCOUNT_DELETED')) {
        await this.#endSession(err.code);
      } else {
        this.#scheduleRefresh(5_000); // transient: try again soon
      }
      throw err;
    }
    if (this.#session !== session) return; // signed out meanwhile
    await this.#adopt({ ...session, accessToken: res.accessToken, refreshToken: res.refreshToken });
    const connection = this.#connection;
    if (connection?.connected) {
      await connection.request('session:refresh', { accessToken: res.accessToken }).catch((err: unknown) => this.emit('error', err));
    }
  }

  #expiresInMs(): number {
    const exp = this.#session ? decodeJwtClaims(this.#session.accessToken).exp : undefined;
    return exp === undefined ? Number.POSITIVE_INFINITY : exp * 1000 - Date.now();
  }

  #marginMs(): number {
    if (this.#opts.refreshMarginMs !== undefined) return this.#opts.refreshMarginMs;
    const claims = this.#session ? decodeJwtClaims(this.#session.accessToken) as { exp?: number; iat?: number } : {};
    const lifetime = claims.exp && claims.iat ? (claims.exp - claims.iat) * 1000 : 900_000;
    return Math.min(60_000, Math.max(5_000, lifetime / 5));
  }

  #scheduleRefresh(afterMs?: number): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (this.#closed || !this.#session?.refreshToken) return;
    const delay = afterMs ?? Math.max(0, this.#expiresInMs() - this.#marginMs());
    if (!Number.isFinite(delay)) return;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      this.refresh().catch((err: unknown) => this.emit('error', err));
    }, Math.min(delay, 2 ** 31 - 1));
  }

  async #endSession(reason: string): Promise<void> {
    if (!this.#session) return;
    this.#session = null;
    clearTimeout(this.#refreshTimer);
    this.#connection?.close();
    this.#connection = undefined;
    await this.#store.clear();
    this.emit('state', 'signedOut');
    this.emit('signedOut', reason);
  }
}

interface NoticeSub {
  event: ServerNoticeName;
  listener: (p: never) => void;
  detach?: (() => void) | undefined;
}
