import { CallhubClient } from '../../shared/client/CallhubClient.js';
import type { Call } from '../../shared/client/Call.js';
import type { Conference, ConferenceExit } from '../../shared/client/Conference.js';
import { ClientError } from '../../shared/client/ClientError.js';
import { WebStorageTokenStore } from '../../shared/client/TokenStore.js';
import type { CallEndReason } from '../../shared/protocol/calls.js';
import { byTestId, elapsed, h, mount } from './dom.js';
import { MediaSinks } from './MediaSinks.js';
import { AddressBook } from './AddressBook.js';
import { conferenceInviteSheet, conferenceView, EXIT_TEXT, type ConferenceActions } from './conferenceViews.js';

const END_TEXT: Record<CallEndReason, string> = {
  completed: 'Call ended',
  declined: 'Call declined',
  busy: 'Busy',
  no_answer: 'No answer',
  cancelled: 'Call cancelled',
  failed: 'Call failed',
  answered_elsewhere: 'Answered on another device',
  declined_elsewhere: 'Declined on another device',
  party_lost: 'Connection lost',
};

export interface SoftphoneOptions {
  /** Test-only: never let a call's media go peer-to-peer (exercises the move to the relay). */
  blockDirectMedia?: boolean;
}

/**
 * The web softphone: sign-in, contacts, 1:1 calls. One screen at a time in
 * `#app` (its `data-state` says which), an incoming-call sheet on top, and
 * media elements that outlive re-renders.
 */
export class Softphone {
  readonly client: CallhubClient;
  readonly sinks: MediaSinks;
  readonly #root: HTMLElement;
  readonly #book = new AddressBook(localStorage);
  #pendingPhone = '';
  #call: Call | undefined;
  #incoming: Call | undefined;
  #lastEnded: { callId?: string; reason: CallEndReason } | undefined;
  #error = '';
  #ticker: ReturnType<typeof setInterval> | undefined;
  #screen: 'signin' | 'code' | 'home' | 'call' | 'conference' = 'signin';
  #conference: Conference | undefined;
  #confInvite: Conference | undefined;
  #lastConfExit: { conferenceId: string; reason: ConferenceExit } | undefined;

  constructor(root: HTMLElement, opts: SoftphoneOptions = {}) {
    this.#root = root;
    this.client = new CallhubClient({
      url: location.origin,
      tokens: new WebStorageTokenStore(localStorage),
      device: { platform: 'web', name: navigator.userAgent.includes('Mobile') ? 'Mobile browser' : 'Browser' },
      appVersion: 'web-0.1.0',
      testing: { blockDirectMedia: opts.blockDirectMedia === true },
    });
    this.sinks = new MediaSinks(document.body);
    this.client.on('state', () => this.#renderStatus());
    this.client.onNotice('contact:joined', (p) => {
      this.#book.joined(p.userId, p.displayName, p.clientIds);
      if (this.#screen === 'home') this.#render();
    });
    this.client.on('signedOut', () => {
      this.#book.clear();
      this.#screen = 'signin';
      this.#render();
    });
    this.client.on('error', (err) => console.warn('callhub:', err));
    this.client.calls.on('incoming', (call) => this.#onIncoming(call));
    this.client.conferences.on('incoming', (conf) => this.#onConferenceInvite(conf));
    this.client.conferences.on('joined', (conf) => this.#enterConference(conf));
  }

  get currentConference(): Conference | undefined {
    return this.#conference;
  }

  get lastConferenceExit(): { conferenceId: string; reason: ConferenceExit } | undefined {
    return this.#lastConfExit;
  }

  get currentCall(): Call | undefined {
    return this.#call;
  }

  get lastEnded(): { callId?: string; reason: CallEndReason } | undefined {
    return this.#lastEnded;
  }

  async start(): Promise<void> {
    if (await this.client.restore()) {
      this.#screen = 'home';
      this.#render();
      await this.client.connect().catch((err: unknown) => this.#fail(err));
    } else {
      this.#render();
    }
  }

  // --- actions -------------------------------------------------------------------

  async #requestCode(phone: string): Promise<void> {
    try {
      await this.client.requestCode(phone, 'sms');
      this.#pendingPhone = phone;
      this.#screen = 'code';
      this.#error = '';
      this.#render();
    } catch (err) {
      this.#fail(err);
    }
  }

  async #verify(code: string, displayName: string): Promise<void> {
    try {
      await this.client.verify(this.#pendingPhone, code, displayName ? { displayName } : {});
      this.#screen = 'home';
      this.#error = '';
      this.#render();
      await this.client.connect();
    } catch (err) {
      this.#fail(err);
    }
  }

  async #uploadContacts(text: string): Promise<void> {
    const entries = AddressBook.parse(text);
    try {
      const reply = await this.client.uploadContacts(entries);
      this.#book.replace(entries, reply.matches);
      this.#error = '';
      this.#render();
    } catch (err) {
      this.#fail(err);
    }
  }

  async #dial(target: { userId: string } | { phone: string }, video = false): Promise<void> {
    if (this.#call) return;
    this.#error = '';
    try {
      const call = await this.client.calls.call(target, { video });
      if (call.state !== 'ended') this.#adopt(call);
      else this.#onEnded(call);
    } catch (err) {
      this.#fail(err);
    }
  }

  async #answer(): Promise<void> {
    const call = this.#incoming;
    if (!call) return;
    this.#incoming = undefined;
    this.#adopt(call);
    await call.accept().catch((err: unknown) => this.#fail(err));
  }

  async #decline(): Promise<void> {
    const call = this.#incoming;
    if (!call) return;
    this.#incoming = undefined;
    this.#render();
    await call.decline().catch((err: unknown) => this.#fail(err));
  }

  async #startConference(fromCall?: Call, invitePhone?: string): Promise<void> {
    if (this.#conference) return;
    this.#error = '';
    try {
      const opts: Parameters<CallhubClient['conferences']['create']>[0] = {};
      if (fromCall?.id) opts.fromCallId = fromCall.id;
      if (invitePhone) opts.invite = [{ phone: invitePhone }];
      this.#enterConference(await this.client.conferences.create(opts));
    } catch (err) {
      this.#fail(err);
    }
  }

  async #joinConference(conferenceId: string): Promise<void> {
    if (this.#conference) return;
    this.#error = '';
    try {
      this.#enterConference(await this.client.conferences.join(conferenceId));
    } catch (err) {
      this.#fail(err);
    }
  }

  #conferenceActions(conf: Conference): ConferenceActions {
    const run = (p: Promise<unknown>) => void p.then(() => this.#render(), (err: unknown) => this.#fail(err));
    return {
      invite: (target) => run(conf.invite([target])),
      toggleMute: () => run(conf.setMuted(!conf.muted)),
      muteParticipant: (userId) => run(conf.muteParticipant(userId, 'audio')),
      remove: (userId) => run(conf.remove(userId)),
      leave: () => run(conf.leave()),
      end: () => run(conf.end()),
      accept: () => {
        this.#confInvite = undefined;
        this.#enterConference(conf);
        run(conf.join());
      },
      decline: () => {
        this.#confInvite = undefined;
        run(conf.decline());
      },
    };
  }

  // --- conference lifecycle -------------------------------------------------------

  #onConferenceInvite(conf: Conference): void {
    if (this.#conference || this.#call || this.#confInvite) return; // busy: let it ring out here, other devices may join
    this.#confInvite = conf;
    conf.on('ended', () => {
      if (this.#confInvite === conf) this.#confInvite = undefined;
      if (this.#conference !== conf) this.#render();
    });
    this.#render();
  }

  #enterConference(conf: Conference): void {
    if (this.#conference === conf) return;
    this.#conference = conf;
    this.#screen = 'conference';
    conf.on('phase', () => this.#render());
    conf.on('participants', () => this.#render());
    conf.on('activeSpeaker', () => this.#render());
    conf.on('mutedByHost', () => this.#render());
    conf.on('stream', (userId, stream) => this.sinks.attach(`conf:${userId}`, stream));
    conf.on('streamEnded', (userId) => this.sinks.detach(`conf:${userId}`));
    conf.on('error', (err) => console.warn('conference:', err));
    conf.on('ended', (reason) => {
      this.#lastConfExit = { conferenceId: conf.id, reason };
      if (this.#conference === conf) {
        this.#conference = undefined;
        for (const key of this.sinks.keys()) if (key.startsWith('conf:')) this.sinks.detach(key);
        this.#screen = this.#call ? 'call' : 'home';
      }
      this.#render();
    });
    for (const [userId, stream] of conf.streams) this.sinks.attach(`conf:${userId}`, stream);
    this.#render();
  }

  // --- call lifecycle ---------------------------------------------------------------

  #onIncoming(call: Call): void {
    if (this.#call || this.#incoming || this.#conference) {
      // Already on a call: this device is busy (the user's other devices may still answer).
      void call.decline('busy').catch(() => undefined);
      return;
    }
    this.#incoming = call;
    call.on('ended', () => {
      if (this.#incoming === call) this.#incoming = undefined;
      if (this.#call !== call) this.#onEnded(call);
    });
    this.#render();
  }

  #adopt(call: Call): void {
    this.#call = call;
    this.#screen = 'call';
    call.on('state', () => this.#render());
    call.on('connected', () => this.#render());
    call.on('peerMedia', () => this.#render());
    call.on('remoteStream', (stream) => this.sinks.attach('call', stream));
    call.on('ended', () => this.#onEnded(call));
    if (call.remoteStream) this.sinks.attach('call', call.remoteStream);
    if (call.video) {
      const showLocal = () => { if (call.localStream) this.sinks.attach('local', call.localStream, { muted: true }); };
      call.on('state', showLocal);
      showLocal();
    }
    clearInterval(this.#ticker);
    this.#ticker = setInterval(() => {
      const t = byTestId(this.#root, 'call-timer');
      if (t && this.#call?.timings.answeredAt) t.textContent = elapsed(this.#call.timings.answeredAt);
    }, 1000);
    this.#render();
  }

  #onEnded(call: Call): void {
    this.#lastEnded = call.id ? { callId: call.id, reason: call.endReason ?? 'completed' } : { reason: call.endReason ?? 'completed' };
    if (this.#call === call) {
      this.#call = undefined;
      this.sinks.detach('call');
      this.sinks.detach('local');
      clearInterval(this.#ticker);
      this.#screen = this.#conference ? 'conference' : 'home';
    }
    this.#render();
  }

  #fail(err: unknown): void {
    this.#error = err instanceof ClientError ? `${err.message} (${err.code})` : String(err);
    this.#render();
  }

  // --- rendering ----------------------------------------------------------------

  #render(): void {
    this.#root.dataset.state = this.#screen;
    const screen = this.#screen === 'signin' ? this.#signinView()
      : this.#screen === 'code' ? this.#codeView()
      : this.#screen === 'call' && this.#call ? this.#callView(this.#call)
      : this.#screen === 'conference' && this.#conference
        ? conferenceView(this.#conference, this.client.userId, this.#book.contacts, this.#conferenceActions(this.#conference))
        : this.#homeView();
    mount(this.#root,
      h('header', { class: 'bar' },
        h('strong', {}, 'callhub'),
        h('span', { testid: 'conn-state', class: 'pill' }, this.client.state)),
      this.#error ? h('p', { testid: 'error', class: 'error', role: 'alert' }, this.#error) : null,
      screen,
      this.#incoming ? this.#incomingView(this.#incoming) : null,
      !this.#incoming && this.#confInvite ? conferenceInviteSheet(this.#confInvite, this.#conferenceActions(this.#confInvite)) : null,
    );
  }

  #renderStatus(): void {
    const pill = byTestId(this.#root, 'conn-state');
    if (pill) pill.textContent = this.client.state;
  }

  #signinView(): HTMLElement {
    const phone = h('input', { testid: 'phone', type: 'tel', inputmode: 'tel', autocomplete: 'tel', placeholder: '+44 7700 900123', required: true });
    return h('form', { class: 'card', testid: 'signin', onsubmit: (e) => { e.preventDefault(); void this.#requestCode(phone.value.trim()); } },
      h('h1', {}, 'Sign in'),
      h('label', {}, 'Your phone number', phone),
      h('button', { testid: 'send-code', type: 'submit', class: 'primary' }, 'Send code'));
  }

  #codeView(): HTMLElement {
    const code = h('input', { testid: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, pattern: '\\d{6}', required: true });
    const name = h('input', { testid: 'display-name', autocomplete: 'name', placeholder: 'Only needed the first time' });
    return h('form', { class: 'card', testid: 'verify-form', onsubmit: (e) => { e.preventDefault(); void this.#verify(code.value.trim(), name.value.trim()); } },
      h('h1', {}, 'Enter the code'),
      h('p', { class: 'muted' }, `We sent a 6-digit code to ${this.#pendingPhone}.`),
      h('label', {}, 'Code', code),
      h('label', {}, 'Your name', name),
      h('button', { testid: 'verify', type: 'submit', class: 'primary' }, 'Sign in'),
      h('button', { type: 'button', class: 'link', onclick: () => { this.#screen = 'signin'; this.#render(); } }, 'Use another number'));
  }

  #homeView(): HTMLElement {
    const book = h('textarea', { testid: 'contacts-input', rows: 3, placeholder: 'One contact per line: Name, +44 7700 900123' });
    const dial = h('input', { testid: 'dial-input', type: 'tel', placeholder: 'Number to call' });
    const confId = h('input', { testid: 'conf-join-input', placeholder: 'Conference id' });
    const ended = this.#lastEnded;
    const confExit = this.#lastConfExit;
    return h('section', { testid: 'home' },
      ended ? h('p', { testid: 'call-ended', 'data-reason': ended.reason, class: 'notice' }, END_TEXT[ended.reason]) : null,
      confExit ? h('p', { testid: 'conf-ended', 'data-reason': confExit.reason, class: 'notice' }, EXIT_TEXT[confExit.reason]) : null,
      h('div', { class: 'card' },
        h('h2', {}, 'Contacts'),
        this.#book.contacts.length
          ? h('ul', { testid: 'contact-list', class: 'list' }, ...this.#book.contacts.map((c) =>
            h('li', { testid: 'contact', 'data-user-id': c.userId },
              h('span', {}, h('strong', {}, c.name), c.phone ? h('small', { class: 'muted' }, ` ${c.phone}`) : null),
              h('span', { class: 'actions' },
                h('button', { testid: 'video-call-contact', class: 'small', 'data-user-id': c.userId, onclick: () => void this.#dial({ userId: c.userId }, true) }, 'Video'),
                h('button', { testid: 'call-contact', class: 'primary small', 'data-user-id': c.userId, onclick: () => void this.#dial({ userId: c.userId }) }, 'Call')))))
          : h('p', { class: 'muted' }, 'Add your address book to see who is here.'),
        h('form', { onsubmit: (e) => { e.preventDefault(); void this.#uploadContacts(book.value); } },
          book,
          h('button', { testid: 'contacts-upload', type: 'submit' }, 'Find contacts'))),
      h('form', { class: 'card row', onsubmit: (e) => { e.preventDefault(); if (dial.value.trim()) void this.#dial({ phone: dial.value.trim() }); } },
        dial,
        h('button', { testid: 'dial-call', type: 'submit', class: 'primary' }, 'Call')),
      h('div', { class: 'card' },
        h('h2', {}, 'Conference'),
        h('button', { testid: 'conf-create', class: 'primary', onclick: () => void this.#startConference() }, 'Start a conference'),
        h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); if (confId.value.trim()) void this.#joinConference(confId.value.trim()); } },
          confId,
          h('button', { testid: 'conf-join', type: 'submit' }, 'Join'))),
      h('button', { type: 'button', class: 'link', testid: 'sign-out', onclick: () => void this.client.signOut() }, 'Sign out'));
  }

  #callView(call: Call): HTMLElement {
    const status = call.state === 'inviting' ? 'Calling…'
      : call.state === 'ringing' ? (call.role === 'caller' ? 'Ringing…' : 'Incoming call')
      : call.state === 'answered' ? 'Connecting…'
      : call.state === 'connected' ? 'Connected' : 'Ended';
    const path = call.state === 'connected' ? call.mediaPath : undefined;
    const addNumber = h('input', { testid: 'call-add-input', type: 'tel', placeholder: 'Add someone: number' });
    const answered = call.state === 'answered' || call.state === 'connected';
    return h('section', { testid: 'call', class: 'call', 'data-call-id': call.id ?? '', 'data-call-state': call.state },
      h('div', { class: 'avatar' }, initials(call.peer.displayName ?? call.peer.phone ?? '?')),
      h('h1', { testid: 'call-peer' }, call.peer.displayName ?? call.peer.phone ?? 'Unknown'),
      call.peer.phone ? h('p', { testid: 'call-peer-number', class: 'muted' }, call.peer.phone) : null,
      h('p', { testid: 'call-status' }, status),
      h('p', { class: 'meta' },
        h('span', { testid: 'call-timer' }, call.timings.answeredAt ? elapsed(call.timings.answeredAt) : ''),
        path ? h('span', { testid: 'call-path', class: `pill ${path}`, 'data-path': path }, path === 'direct' ? 'Direct' : 'Relayed') : null,
        call.peerMedia && !call.peerMedia.audio ? h('span', { testid: 'peer-muted', class: 'pill' }, 'Muted') : null),
      h('div', { class: 'controls' },
        h('button', { testid: 'mute', class: call.muted ? 'toggle on' : 'toggle', 'aria-pressed': String(call.muted), onclick: () => void call.setMuted(!call.muted).then(() => this.#render()) }, call.muted ? 'Unmute' : 'Mute'),
        h('button', { testid: 'hangup', class: 'danger', onclick: () => void call.hangup() }, 'Hang up')),
      answered
        ? h('form', { class: 'row add', onsubmit: (e) => { e.preventDefault(); if (addNumber.value.trim()) void this.#startConference(call, addNumber.value.trim()); } },
          addNumber,
          h('button', { testid: 'call-add', type: 'submit' }, 'Add'))
        : null);
  }

  #incomingView(call: Call): HTMLElement {
    return h('div', { class: 'sheet', testid: 'incoming', 'data-call-id': call.id ?? '', role: 'dialog', 'aria-label': 'Incoming call' },
      h('p', { class: 'muted' }, call.video ? 'Incoming video call' : 'Incoming call'),
      h('h1', { testid: 'incoming-name' }, call.peer.displayName ?? 'Unknown caller'),
      h('p', { testid: 'incoming-number' }, call.peer.phone ?? ''),
      h('div', { class: 'controls' },
        h('button', { testid: 'decline', class: 'danger', onclick: () => void this.#decline() }, 'Decline'),
        h('button', { testid: 'answer', class: 'primary', onclick: () => void this.#answer() }, 'Answer')));
  }
}

function initials(name: string): string {
  const words = name.replace(/^\+/, '').split(/\s+/).filter(Boolean);
  return (words.length > 1 ? `${words[0]![0]}${words[1]![0]}` : (words[0] ?? '?').slice(0, 1)).toUpperCase();
}
