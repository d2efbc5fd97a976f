import { z } from 'zod';
import { notice, request } from './define.js';
import { CallId, DisplayName, E164, Empty, PhoneInput, Platform, RoomId, UserId } from './common.js';

/**
 * 1:1 calls. The hub rings the callee's devices, settles who answered, and
 * relays SDP and ICE between the two devices of the call; media flows
 * peer-to-peer (or through TURN / the relay when direct media fails).
 */

/** Largest session description accepted (an oversized `sdp` field fails with SDP_TOO_LARGE). */
export const SDP_MAX_LENGTH = 64 * 1024;
/** Pre-answer signals from the caller that the hub keeps for devices that come online while ringing. */
export const EARLY_SIGNALS_MAX = 64;

export const CallState = z.enum(['inviting', 'ringing', 'answered', 'connected', 'ended']);
export type CallState = z.infer<typeof CallState>;

/**
 * Why a call ended, as seen by the device told. `answered_elsewhere` and
 * `declined_elsewhere` only ever reach the callee's other devices.
 */
export const CallEndReason = z.enum([
  'completed',
  'declined',
  'busy',
  'no_answer',
  'cancelled',
  'failed',
  'answered_elsewhere',
  'declined_elsewhere',
  'party_lost',
]);
export type CallEndReason = z.infer<typeof CallEndReason>;

export const CallRole = z.enum(['caller', 'callee']);
export type CallRole = z.infer<typeof CallRole>;

export const Sdp = z.string().min(1).max(SDP_MAX_LENGTH);

/** An RTCIceCandidateInit. */
export const IceCandidate = z.object({
  candidate: z.string().max(1024),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(255).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
}).strict();
export type IceCandidate = z.infer<typeof IceCandidate>;

/** An RTCIceServer: STUN entries carry only urls; TURN entries carry coturn REST credentials. */
export const IceServer = z.object({
  urls: z.array(z.string()),
  username: z.string().optional(),
  credential: z.string().optional(),
});
export type IceServer = z.infer<typeof IceServer>;

export const IceCandidateType = z.enum(['host', 'srflx', 'prflx', 'relay']);

/** Who is on the other end, as the hub knows them: the verified number and the profile name. */
export const CallParty = z.object({
  userId: UserId,
  phone: E164.nullable(),
  displayName: DisplayName.nullable(),
});
export type CallParty = z.infer<typeof CallParty>;

export const ClientInfo = z.object({
  platform: Platform,
  appVersion: z.string().min(1).max(32).regex(/^[A-Za-z0-9._+-]+$/),
}).strict();

export const MediaState = z.object({ audio: z.boolean(), video: z.boolean() });

/** The callee: a user id, or a phone number (normalised to E.164 by the hub). */
export const CallTarget = z.union([
  z.object({ userId: UserId }).strict(),
  z.object({ phone: PhoneInput }).strict(),
]);

/** SDP and ICE between the two devices of a call. */
export const CallSignal = z.discriminatedUnion('type', [
  z.object({ callId: CallId, type: z.literal('offer'), sdp: Sdp }).strict(),
  z.object({ callId: CallId, type: z.literal('answer'), sdp: Sdp }).strict(),
  z.object({ callId: CallId, type: z.literal('candidate'), candidate: IceCandidate }).strict(),
  z.object({ callId: CallId, type: z.literal('end-of-candidates') }).strict(),
]);
export type CallSignal = z.infer<typeof CallSignal>;

export const CallReport = z.discriminatedUnion('event', [
  z.object({
    callId: CallId,
    event: z.literal('connected'),
    /** The selected candidate pair: this device's candidate type and the peer's. */
    path: z.object({ local: IceCandidateType, remote: IceCandidateType }).strict(),
  }).strict(),
  z.object({ callId: CallId, event: z.literal('ice-failed') }).strict(),
  z.object({
    callId: CallId,
    event: z.literal('quality'),
    codec: z.string().min(1).max(32).regex(/^[A-Za-z0-9/._-]+$/).optional(),
    rttMs: z.number().min(0).max(60_000).optional(),
    jitterMs: z.number().min(0).max(60_000).optional(),
    /** Fraction of packets lost, 0..1. */
    loss: z.number().min(0).max(1).optional(),
  }).strict(),
]);
export type CallReport = z.infer<typeof CallReport>;

/** A call as one device of one party sees it (call:list, call:state, call:resumed). */
export const CallView = z.object({
  callId: CallId,
  role: CallRole,
  state: CallState,
  video: z.boolean(),
  peer: CallParty,
  /** True when this device is the one the call is bound to (the caller's device, or the callee device that answered). */
  thisDevice: z.boolean(),
  /** The other party's signaling connection: `lost` while the hub waits for it to come back. */
  peerConnection: z.enum(['online', 'lost']),
  peerMedia: MediaState.nullable(),
  createdAt: z.number(),
  answeredAt: z.number().nullable(),
  connectedAt: z.number().nullable(),
  endReason: CallEndReason.nullable(),
});
export type CallView = z.infer<typeof CallView>;

const WithCallId = z.object({ callId: CallId }).strict();

export const callsRequests = {
  'call:invite': request({
    request: z.object({
      to: CallTarget,
      video: z.boolean().default(false),
      /** The offer, if the caller has it already (it then reaches every ringing device with call:incoming). */
      sdp: Sdp.optional(),
      client: ClientInfo.optional(),
    }).strict(),
    response: z.object({
      callId: CallId,
      role: CallRole,
      state: CallState,
      /** Set when the callee was calling you at the same moment: you joined their call as its callee (see docs). */
      glare: z.boolean(),
      peer: CallParty,
      /** On glare: the other side's offer, if it sent one, to answer with call:signal. */
      sdp: Sdp.optional(),
      /** On glare: the candidates the other side sent before this answer. */
      candidates: z.array(IceCandidate).optional(),
      endReason: CallEndReason.optional(),
      iceServers: z.array(IceServer),
    }),
    description: 'Call a user by user id or phone number. The ack carries the call id; progress arrives as call:ringing, call:accepted and call:ended.',
  }),
  'call:accept': request({
    request: z.object({ callId: CallId, sdp: Sdp.optional(), client: ClientInfo.optional() }).strict(),
    response: z.object({ callId: CallId, iceServers: z.array(IceServer) }),
    description: 'Answer a ringing call on this device. The first device to accept wins; others get CALL_ALREADY_ANSWERED.',
  }),
  'call:reject': request({
    request: z.object({
      callId: CallId,
      /** `declined` (default) ends the call for every device; `busy` only stops this device ringing. */
      reason: z.enum(['declined', 'busy']).default('declined'),
    }).strict(),
    response: Empty,
    description: 'Decline a ringing call (callee), or report this device busy.',
  }),
  'call:cancel': request({
    request: WithCallId,
    response: Empty,
    description: 'Give up a call that has not been answered (caller).',
  }),
  'call:hangup': request({
    request: WithCallId,
    response: Empty,
    description: 'End an answered call (either party). A caller hanging up before the answer cancels.',
  }),
  'call:signal': request({
    request: CallSignal,
    response: Empty,
    description: 'Send an offer, answer, ICE candidate or end-of-candidates to the other device of the call.',
  }),
  'call:media-state': request({
    request: z.object({ callId: CallId, audio: z.boolean(), video: z.boolean() }).strict(),
    response: Empty,
    description: 'Tell the other party this device muted or unmuted audio, or turned video on or off.',
  }),
  'call:report': request({
    request: CallReport,
    response: Empty,
    description: 'Connectivity and quality reports: media connected (and over which path), ICE failed, quality figures.',
  }),
  'call:list': request({
    request: Empty,
    response: z.object({ calls: z.array(CallView) }),
    description: 'The calls you are in right now (at most one), e.g. after a reconnect.',
  }),
  'call:state': request({
    request: WithCallId,
    response: z.object({ call: CallView }),
    description: 'One call you are a party of.',
  }),
};

export const callsNotices = {
  'call:incoming': notice({
    payload: z.object({
      callId: CallId,
      caller: CallParty,
      video: z.boolean(),
      sdp: Sdp.optional(),
      /** Candidates the caller sent before this device learned of the call. */
      candidates: z.array(IceCandidate),
      candidatesComplete: z.boolean(),
      iceServers: z.array(IceServer),
      /** When the call stops ringing (epoch ms). */
      expiresAt: z.number(),
    }),
    description: 'A call rings on this device. May repeat for the same call id (e.g. after a reconnect); treat it as idempotent.',
  }),
  'call:ringing': notice({
    payload: z.object({ callId: CallId }),
    description: 'The callee has at least one online device that is ringing.',
  }),
  'call:accepted': notice({
    payload: z.object({ callId: CallId, sdp: Sdp.optional() }),
    description: 'The callee answered; `sdp` is the answer when the callee sent it with call:accept.',
  }),
  'call:ended': notice({
    payload: z.object({ callId: CallId, reason: CallEndReason }),
    description: 'The call is over for this device. Sent exactly once per device that knew of the call.',
  }),
  'call:signal': notice({
    payload: CallSignal,
    description: 'An offer, answer, ICE candidate or end-of-candidates from the other device.',
  }),
  'call:media-state': notice({
    payload: z.object({ callId: CallId, audio: z.boolean(), video: z.boolean() }),
    description: 'The other party changed its media state.',
  }),
  'call:resumed': notice({
    payload: z.object({ call: CallView }),
    description: 'This device (re)connected while it is a party of a live call: the call continues.',
  }),
  'call:relay': notice({
    payload: z.object({ callId: CallId, roomId: RoomId }),
    description: 'Direct media failed (ICE failure or no connected report in time): the call goes on through the relay. Close the peer connection, join the relay room (media:join { roomId }, then send and receive as in a conference), and report call:report connected again once media flows. The call id stays the same.',
  }),
  'call:peer-connection': notice({
    payload: z.object({ callId: CallId, state: z.enum(['lost', 'resumed']) }),
    description: 'The other party lost its signaling connection (the call waits for the reconnect grace period) or got it back.',
  }),
};
