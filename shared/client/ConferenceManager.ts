import type { CallhubClient } from './CallhubClient.js';
import type { CallTarget } from './CallManager.js';
import { ClientError } from './ClientError.js';
import { Conference, type ConferenceContext } from './Conference.js';
import { Emitter } from './Emitter.js';
import { requireMediaEnvironment, type MediaEnvironment } from './MediaEnvironment.js';
import type { RelayJoiner } from './relayTypes.js';

export interface ConferenceManagerOptions {
  media: MediaEnvironment | undefined;
  relay: () => Promise<RelayJoiner>;
  appVersion: string;
  platform: 'ios' | 'android' | 'web' | 'desktop';
}

export interface ConferenceManagerEvents {
  /** An invitation rings on this device: show it, then `join()` or `decline()`. */
  incoming: (conference: Conference) => void;
  /**
   * This device is in a conference it did not join itself: the other party
   * of a 1:1 call turned it into a conference, or a running conference was
   * resumed after a restart. Its media is being joined.
   */
  joined: (conference: Conference) => void;
  ended: (conference: Conference) => void;
}

/**
 * The conferences of a client: create, join by id, invitations, and the
 * routing of every `conference:*` notice to its conference.
 */
export class ConferenceManager extends Emitter<ConferenceManagerEvents> {
  readonly #client: CallhubClient;
  readonly #opts: ConferenceManagerOptions;
  readonly #conferences = new Map<string, Conference>();
  readonly #offs: (() => void)[] = [];

  constructor(client: CallhubClient, opts: ConferenceManagerOptions) {
    super();
    this.#client = client;
    this.#opts = opts;
    const on = client.onNotice.bind(client);
    this.#offs.push(
      on('conference:incoming', (p) => {
        if (this.#conferences.has(p.conferenceId)) return; // repeated ring
        const conf = new Conference(this.#context(), { conferenceId: p.conferenceId, hostId: p.hostId, video: p.video, phase: 'ringing', inviter: p.inviter });
        this.#conferences.set(p.conferenceId, conf);
        this.emit('incoming', conf);
      }),
      on('conference:invite-ended', (p) => {
        const conf = this.#conferences.get(p.conferenceId);
        if (!conf) return;
        // Our own invitation stopped ringing (answered on another device, declined, timed out, withdrawn).
        if (p.userId === client.userId && conf.phase === 'ringing') conf.onExit(p.reason === 'ended' ? 'empty' : 'invite_ended');
      }),
      on('conference:participants', (p) => this.#conferences.get(p.conferenceId)?.applyParticipants(p.hostId, p.participants, p.invited)),
      on('conference:muted', (p) => this.#conferences.get(p.conferenceId)?.onMutedByHost(p.kind, p.by)),
      on('conference:removed', (p) => this.#conferences.get(p.conferenceId)?.onExit(p.reason === 'host' ? 'removed' : 'joined_elsewhere')),
      on('conference:ended', (p) => this.#conferences.get(p.conferenceId)?.onExit(p.reason)),
      on('conference:moved', (p) => {
        const conf = this.#adopt(p.conference.conferenceId, p.conference.hostId, p.conference.video);
        void conf.attach(p.conference).catch(() => undefined);
        this.emit('joined', conf);
      }),
      on('conference:resumed', ({ conference: view }) => {
        if (this.#conferences.has(view.conferenceId) || !view.thisDevice || view.state !== 'active') return;
        // A restarted app: rejoin the media of the conference we are still in.
        const conf = this.#adopt(view.conferenceId, view.hostId, view.video);
        void conf.attach(view).catch(() => undefined);
        this.emit('joined', conf);
      }),
    );
  }

  get active(): Conference[] {
    return [...this.#conferences.values()].filter((c) => c.phase !== 'ended');
  }

  get(conferenceId: string): Conference | undefined {
    return this.#conferences.get(conferenceId);
  }

  /**
   * Creates a conference, joins it as host on this device and rings
   * `invite`. With `fromCallId`, the answered 1:1 call becomes the
   * conference (the other party is moved into it).
   */
  async create(opts: { invite?: CallTarget[]; video?: boolean; fromCallId?: string } = {}): Promise<Conference> {
    requireMediaEnvironment(this.#opts.media);
    const res = await this.#client.request('conference:create', {
      video: opts.video === true,
      client: this.#clientInfo(),
      ...(opts.invite?.length ? { invite: opts.invite } : {}),
      ...(opts.fromCallId ? { fromCallId: opts.fromCallId } : {}),
    });
    const conf = this.#adopt(res.conferenceId, res.conference.hostId, res.conference.video);
    await conf.attach(res.conference);
    return conf;
  }

  /** Joins a conference by id (you must be invited or a participant). */
  async join(conferenceId: string): Promise<Conference> {
    requireMediaEnvironment(this.#opts.media);
    const known = this.#conferences.get(conferenceId);
    if (known?.phase === 'ringing') {
      await known.join();
      return known;
    }
    if (known && known.phase !== 'ended') throw new ClientError('CALL_INVALID_STATE', 'Already in this conference');
    const res = await this.#client.request('conference:join', { conferenceId, client: this.#clientInfo() });
    const conf = this.#adopt(res.conferenceId, res.conference.hostId, res.conference.video);
    await conf.attach(res.conference);
    return conf;
  }

  /** Leaves every conference and stops listening. */
  close(): void {
    for (const conf of this.active) void conf.leave().catch(() => undefined);
    for (const off of this.#offs.splice(0)) off();
    this.removeAllListeners();
  }

  #adopt(conferenceId: string, hostId: string, video: boolean): Conference {
    const existing = this.#conferences.get(conferenceId);
    if (existing && existing.phase !== 'ended') return existing;
    const conf = new Conference(this.#context(), { conferenceId, hostId, video, phase: 'joining' });
    this.#conferences.set(conferenceId, conf);
    return conf;
  }

  #clientInfo(): { platform: 'ios' | 'android' | 'web' | 'desktop'; appVersion: string } {
    return { platform: this.#opts.platform, appVersion: this.#opts.appVersion };
  }

  #context(): ConferenceContext {
    return {
      client: this.#client,
      env: () => requireMediaEnvironment(this.#opts.media),
      relay: this.#opts.relay,
      clientInfo: this.#clientInfo(),
      onEnded: (conf) => {
        if (this.#conferences.get(conf.id) === conf) this.#conferences.delete(conf.id);
        this.emit('ended', conf);
      },
    };
  }
}
