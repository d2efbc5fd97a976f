import type { Conference, ConferenceExit } from '../../shared/client/Conference.js';
import type { Contact } from './AddressBook.js';
import { h } from './dom.js';

export interface ConferenceActions {
  invite(target: { userId: string } | { phone: string }): void;
  toggleMute(): void;
  muteParticipant(userId: string): void;
  remove(userId: string): void;
  leave(): void;
  end(): void;
  accept(): void;
  decline(): void;
}

export const EXIT_TEXT: Record<ConferenceExit, string> = {
  ended_by_host: 'The host ended the conference',
  empty: 'The conference ended',
  max_duration: 'The conference reached its time limit',
  left: 'You left the conference',
  declined: 'Invitation declined',
  removed: 'The host removed you from the conference',
  joined_elsewhere: 'Joined on another device',
  invite_ended: 'The invitation ended',
  failed: 'Could not join the conference',
};

const TRACK_TEXT = { on: '', muted: 'muted', off: 'no mic' } as const;

/** The conference screen: participants (active speaker highlighted), host controls, invite, mute, leave. */
export function conferenceView(conf: Conference, me: string | undefined, contacts: readonly Contact[], actions: ConferenceActions): HTMLElement {
  const inviteNumber = h('input', { testid: 'conf-invite-input', type: 'tel', placeholder: 'Number to invite' });
  const here = new Set(conf.participants.map((p) => p.userId));
  const ringing = new Set(conf.invited.map((i) => i.userId));
  const speaker = conf.participants.find((p) => p.userId === conf.activeSpeaker);
  // The hub never hands out other members' numbers: a member without a profile
  // name is shown under the name this user's own address book gives them.
  const nameOf = (m: { userId: string; displayName: string | null }, fallback: string) =>
    m.displayName ?? contacts.find((c) => c.userId === m.userId)?.name ?? fallback;
  return h('section', { testid: 'conference', class: 'conference', 'data-conference-id': conf.id, 'data-phase': conf.phase },
    h('h1', {}, 'Conference'),
    h('p', { class: 'muted' }, 'Id ', h('code', { testid: 'conf-id' }, conf.id)),
    h('p', { class: 'meta' },
      h('span', { testid: 'conf-phase', class: 'pill' }, conf.phase === 'joined' ? 'Relayed' : 'Joining…'),
      speaker ? h('span', { testid: 'active-speaker', 'data-user-id': speaker.userId }, `Speaking: ${nameOf(speaker, 'someone')}`) : null),
    h('ul', { testid: 'participants', class: 'list card participants' },
      ...conf.participants.map((p) => h('li', {
        testid: 'participant',
        class: p.userId === conf.activeSpeaker ? 'speaking' : '',
        'data-user-id': p.userId,
        'data-speaking': String(p.userId === conf.activeSpeaker),
        'data-audio': p.audio,
        'data-host': String(p.host),
      },
      h('span', {},
        h('strong', {}, `${nameOf(p, 'Unknown')}${p.userId === me ? ' (you)' : ''}`),
        p.host ? h('small', { class: 'pill' }, 'host') : null,
        p.audio !== 'on' ? h('small', { class: 'muted', testid: 'participant-muted' }, ` ${TRACK_TEXT[p.audio]}`) : null,
        p.connection === 'lost' ? h('small', { class: 'muted' }, ' reconnecting…') : null),
      conf.isHost && p.userId !== me
        ? h('span', { class: 'actions' },
          h('button', { testid: 'participant-mute', class: 'small', 'data-user-id': p.userId, disabled: p.audio !== 'on', onclick: () => actions.muteParticipant(p.userId) }, 'Mute'),
          h('button', { testid: 'participant-remove', class: 'small danger', 'data-user-id': p.userId, onclick: () => actions.remove(p.userId) }, 'Remove'))
        : null)),
      ...conf.invited.map((i) => h('li', { testid: 'invitee', 'data-user-id': i.userId },
        h('span', { class: 'muted' }, `${nameOf(i, 'Someone')} — ringing…`)))),
    h('div', { class: 'card' },
      h('h2', {}, 'Invite'),
      contacts.filter((c) => !here.has(c.userId)).length
        ? h('ul', { class: 'list' }, ...contacts.filter((c) => !here.has(c.userId)).map((c) => h('li', {},
          h('span', {}, c.name),
          h('button', { testid: 'conf-invite-contact', class: 'small', 'data-user-id': c.userId, disabled: ringing.has(c.userId), onclick: () => actions.invite({ userId: c.userId }) }, ringing.has(c.userId) ? 'Ringing' : 'Invite'))))
        : null,
      h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); if (inviteNumber.value.trim()) actions.invite({ phone: inviteNumber.value.trim() }); } },
        inviteNumber,
        h('button', { testid: 'conf-invite', type: 'submit' }, 'Invite'))),
    h('div', { class: 'controls' },
      h('button', { testid: 'mute', class: conf.muted ? 'toggle on' : 'toggle', 'aria-pressed': String(conf.muted), onclick: () => actions.toggleMute() }, conf.muted ? 'Unmute' : 'Mute'),
      h('button', { testid: 'conf-leave', class: 'danger', onclick: () => actions.leave() }, 'Leave'),
      conf.isHost ? h('button', { testid: 'conf-end', class: 'danger', onclick: () => actions.end() }, 'End for all') : null));
}

/** The sheet of a ringing conference invitation. */
export function conferenceInviteSheet(conf: Conference, actions: ConferenceActions): HTMLElement {
  return h('div', { class: 'sheet', testid: 'conf-incoming', 'data-conference-id': conf.id, role: 'dialog', 'aria-label': 'Conference invitation' },
    h('p', { class: 'muted' }, 'Invitation to a conference'),
    h('h1', { testid: 'conf-inviter-name' }, conf.inviter?.displayName ?? 'Someone'),
    h('p', { testid: 'conf-inviter-number' }, conf.inviter?.phone ?? ''),
    h('div', { class: 'controls' },
      h('button', { testid: 'conf-decline', class: 'danger', onclick: () => actions.decline() }, 'Decline'),
      h('button', { testid: 'conf-accept', class: 'primary', onclick: () => actions.accept() }, 'Join')));
}
