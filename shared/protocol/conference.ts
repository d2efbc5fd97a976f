import { z } from 'zod';
import { notice, request } from './define.js';
import { CallId, DisplayName, Empty, Id, RoomId, UserId } from './common.js';
import { CallParty, CallTarget, ClientInfo } from './calls.js';

/**
 * Conferences: several users' media through one relay room (an SFU), with a
 * host who can mute, remove and end. The conference id is also the relay
 * room id: after joining, a device does the `media:*` signaling for that
 * room (see media.ts). Invitees ring like a 1:1 call and accept by joining.
 * Active speaker changes arrive as `media:active-speaker` on the room's
 * media (no conference-specific notice).
 */

/** Most people one conference:create / conference:invite request may ring. */
export const CONFERENCE_INVITES_MAX = 32;

export const ConferenceId = Id;

export const ConferenceState = z.enum(['active', 'ended']);
export type ConferenceState = z.infer<typeof ConferenceState>;

/**
 * Why a conference ended: the host ended it for everyone, the last
 * participant left, or it reached the longest duration allowed.
 */
export const ConferenceEndReason = z.enum(['ended_by_host', 'empty', 'max_duration']);
export type ConferenceEndReason = z.infer<typeof ConferenceEndReason>;

/** A participant's track of one kind: sending, paused (muted by them or the host), or none. conference:participants follows every change. */
export const TrackState = z.enum(['on', 'muted', 'off']);
export type TrackState = z.infer<typeof TrackState>;

export const ConferenceRole = z.enum(['host', 'participant', 'invited', 'none']);
export type ConferenceRole = z.infer<typeof ConferenceRole>;

/**
 * Participants and invitees are shown by profile name only: a conference
 * never hands one member another member's phone number (only the person a
 * call or invitation rings sees the caller's verified number).
 */
export const ConferenceParticipant = z.object({
  userId: UserId,
  displayName: DisplayName.nullable(),
  host: z.boolean(),
  joinedAt: z.number(),
  /** `lost` while the participant's device is away and the hub waits for it (CALL_RECONNECT_GRACE_S). */
  connection: z.enum(['online', 'lost']),
  audio: TrackState,
  video: TrackState,
});
export type ConferenceParticipant = z.infer<typeof ConferenceParticipant>;

/** Someone whose invitation is ringing. */
export const ConferenceInvitee = z.object({
  userId: UserId,
  displayName: DisplayName.nullable(),
  invitedBy: UserId,
  invitedAt: z.number(),
  /** When the invitation stops ringing (epoch ms). */
  expiresAt: z.number(),
});
export type ConferenceInvitee = z.infer<typeof ConferenceInvitee>;

/** A conference as one user sees it (create/join acks, conference:state, conference:list, conference:resumed). */
export const ConferenceView = z.object({
  conferenceId: ConferenceId,
  /** The relay room of the conference's media (equal to conferenceId). */
  roomId: RoomId,
  state: ConferenceState,
  hostId: UserId,
  video: z.boolean(),
  maxParticipants: z.number().int(),
  /** Your place in it: host, participant, invited (ringing, or may join), none (no longer). */
  role: ConferenceRole,
  /** True when your participation is bound to this device (the device that joined). */
  thisDevice: z.boolean(),
  participants: z.array(ConferenceParticipant),
  invited: z.array(ConferenceInvitee),
  createdAt: z.number(),
  endedAt: z.number().nullable(),
  endReason: ConferenceEndReason.nullable(),
});
export type ConferenceView = z.infer<typeof ConferenceView>;

/** Everyone to ring: users by id or by phone number (normalised as for call:invite). */
const Invitees = z.array(CallTarget).min(1).max(CONFERENCE_INVITES_MAX);
const WithConferenceId = z.object({ conferenceId: ConferenceId }).strict();
const Joined = z.object({ conferenceId: ConferenceId, roomId: RoomId, conference: ConferenceView });

export const conferenceRequests = {
  'conference:create': request({
    request: z.object({
      /** Ring these users at once. */
      invite: Invitees.optional(),
      /** Turn this answered 1:1 call (you are a party, on its device) into the conference: both parties join it and the call ends `completed`. */
      fromCallId: CallId.optional(),
      video: z.boolean().default(false),
      client: ClientInfo.optional(),
    }).strict(),
    response: Joined.extend({
      /** User ids now ringing. */
      invited: z.array(UserId),
    }),
    description: 'Create a conference on a relay node and join it as its host on this device (then media:join { roomId }). With fromCallId, both parties of that call become participants (the other party gets conference:moved) and the call ends completed.',
  }),
  'conference:invite': request({
    request: z.object({ conferenceId: ConferenceId, invite: Invitees }).strict(),
    response: z.object({ invited: z.array(UserId) }),
    description: 'Ring more people (any participant may invite). Participants already in are skipped; a ringing invitee is rung again. ROOM_FULL when participants plus ringing invitees would exceed the maximum.',
  }),
  'conference:join': request({
    request: z.object({ conferenceId: ConferenceId, client: ClientInfo.optional() }).strict(),
    response: Joined,
    description: 'Join (or accept an invitation to) a conference on this device; then media:join { roomId }. Only invited users and participants may join; anyone else gets ROOM_NOT_FOUND, as for an id that does not exist. Joining from another device moves your participation there.',
  }),
  'conference:decline': request({
    request: WithConferenceId,
    response: Empty,
    description: 'Stop an invitation ringing on all your devices. You may still join later while the conference runs.',
  }),
  'conference:leave': request({
    request: WithConferenceId,
    response: Empty,
    description: 'Leave a conference (your media leaves the room). A leaving host hands the host role to the longest-present participant; the last participant leaving ends the conference.',
  }),
  'conference:end': request({
    request: WithConferenceId,
    response: Empty,
    description: 'End the conference for everyone (host only).',
  }),
  'conference:mute': request({
    request: z.object({ conferenceId: ConferenceId, userId: UserId, kind: z.enum(['audio', 'video']).optional() }).strict(),
    response: z.object({ tracks: z.number().int() }),
    description: 'Mute (pause on the relay) a participant\'s audio, video, or every track (host only). The participant gets conference:muted and may unmute with media:producer-resume.',
  }),
  'conference:remove': request({
    request: z.object({ conferenceId: ConferenceId, userId: UserId }).strict(),
    response: Empty,
    description: 'Remove a participant, or withdraw an invitation (host only). A removed user cannot join again unless invited again.',
  }),
  'conference:state': request({
    request: WithConferenceId,
    response: z.object({ conference: ConferenceView }),
    description: 'One conference you are in or invited to (also for a while after it ended).',
  }),
  'conference:list': request({
    request: Empty,
    response: z.object({ conferences: z.array(ConferenceView) }),
    description: 'Running conferences you are a participant of or whose invitation is ringing, e.g. after a reconnect.',
  }),
};

export const conferenceNotices = {
  'conference:incoming': notice({
    payload: z.object({
      conferenceId: ConferenceId,
      /** Who invited you: verified number and profile name. */
      inviter: CallParty,
      hostId: UserId,
      video: z.boolean(),
      participantCount: z.number().int(),
      /** When the invitation stops ringing (epoch ms). */
      expiresAt: z.number(),
    }),
    description: 'You are invited to a conference: ring. Accept with conference:join, refuse with conference:decline. May repeat for one conference (a device coming online, a second invitation); treat it as idempotent.',
  }),
  'conference:invite-ended': notice({
    payload: z.object({
      conferenceId: ConferenceId,
      /** The invitee. */
      userId: UserId,
      reason: z.enum(['joined', 'declined', 'timeout', 'cancelled', 'ended']),
    }),
    description: 'An invitation stopped ringing: the invitee joined (on some device), declined, did not answer in time, the host withdrew it, or the conference ended. Sent to every device of the invitee and to the participants.',
  }),
  'conference:participant-joined': notice({
    payload: z.object({ conferenceId: ConferenceId, participant: ConferenceParticipant }),
    description: 'Someone joined (sent to the other participants).',
  }),
  'conference:participant-left': notice({
    payload: z.object({ conferenceId: ConferenceId, userId: UserId, reason: z.enum(['left', 'removed', 'lost']) }),
    description: 'Someone left, was removed by the host, or lost their connection for longer than the grace period (sent to the other participants).',
  }),
  'conference:participants': notice({
    payload: z.object({
      conferenceId: ConferenceId,
      hostId: UserId,
      participants: z.array(ConferenceParticipant),
      invited: z.array(ConferenceInvitee),
    }),
    description: 'The full participant list (with host, connection and track states) and ringing invitations, after every change: join, leave, host change, invitation change, lost or resumed connection, a track starting, ending, or muted/unmuted by its owner (media:producer-pause/-resume) or the host. Replace your list with it.',
  }),
  'conference:muted': notice({
    payload: z.object({ conferenceId: ConferenceId, kind: z.enum(['audio', 'video']).nullable(), by: UserId }),
    description: 'The host muted your audio, video or (kind null) every track. Your relay producers are paused already (media:producer-paused follows); pause your local tracks too.',
  }),
  'conference:removed': notice({
    payload: z.object({ conferenceId: ConferenceId, reason: z.enum(['host', 'joined_elsewhere']) }),
    description: 'This device is no longer in the conference: the host removed you, or you joined on another device. Drop the room\'s media.',
  }),
  'conference:ended': notice({
    payload: z.object({ conferenceId: ConferenceId, reason: ConferenceEndReason }),
    description: 'The conference is over for everyone; drop the room\'s media.',
  }),
  'conference:moved': notice({
    payload: z.object({ conferenceId: ConferenceId, roomId: RoomId, fromCallId: CallId, conference: ConferenceView }),
    description: 'The other party of your 1:1 call turned it into this conference, and you are in it on this device: join the room\'s media (media:join { roomId }). The call then ends with call:ended completed.',
  }),
  'conference:resumed': notice({
    payload: z.object({ conference: ConferenceView }),
    description: 'This device (re)connected while it is a participant of a running conference: you are still in (rejoin the media with media:join { roomId, resume: true }).',
  }),
};
