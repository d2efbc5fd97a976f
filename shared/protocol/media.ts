/**
 * Socket events of the media domain: the mediasoup signaling a client does
 * over its one hub socket for a relay room (a conference, or a 1:1 call that
 * moved to the relay). The hub checks that the client's device belongs to the
 * room, then forwards each request to the room's relay node; the relay checks
 * that every id named belongs to that device's peer in that room.
 *
 * Flow (mediasoup-client): `media:join` -> `device.load({ routerRtpCapabilities })`
 * -> `media:transport-create` (send and/or recv) -> on the transport's
 * 'connect' event `media:transport-connect` -> on 'produce' `media:produce`
 * -> for each producer listed by join or announced by `media:producer-added`:
 * `media:consume` -> `recvTransport.consume(...)` -> `media:consumer-resume`.
 */
import { z } from 'zod';
import { notice, request } from './define.js';
import { RoomId, UserId } from './common.js';
import { MediaId, PeerId, TransportDirection } from './relayControl.js';
import {
  DtlsParameters,
  GeneratedRtpParameters,
  IceCandidate,
  IceParameters,
  MediaKind,
  RouterRtpCapabilities,
  RtpCapabilities,
  RtpParameters,
  TrackAppData,
} from './rtp.js';

const Room = { roomId: RoomId };
const Ok = z.object({});

/** A track another participant sends, as clients see it. */
export const MediaProducer = z.object({
  /** The sending device's peer id in the room (`userId:deviceId`). */
  peerId: PeerId,
  userId: UserId,
  producerId: MediaId,
  kind: MediaKind,
  paused: z.boolean(),
  appData: TrackAppData.optional(),
});
export type MediaProducer = z.infer<typeof MediaProducer>;

/** A room's dominant speaker: the device's peer id and its user. */
export const ActiveSpeaker = z.object({ peerId: PeerId, userId: UserId });
export type ActiveSpeaker = z.infer<typeof ActiveSpeaker>;

export const mediaRequests = {
  'media:capabilities': request({
    request: z.object(Room).strict(),
    response: z.object({ rtpCapabilities: RouterRtpCapabilities }),
    description: 'The room router\'s RTP capabilities (for device.load()). Opens the room on a relay node if needed.',
  }),
  'media:join': request({
    request: z.object({ ...Room, resume: z.boolean().optional() }).strict(),
    response: z.object({
      rtpCapabilities: RouterRtpCapabilities,
      producers: z.array(MediaProducer),
      resumed: z.boolean(),
      /** Who is speaking now (null: nobody yet, or the speaker's track ended); media:active-speaker announces changes from here on. */
      activeSpeaker: ActiveSpeaker.nullable(),
    }),
    description: 'Join the room\'s media as this device (opens the room if needed) and receive its media notices on this socket. Joining again starts over (the device\'s previous transports are closed) unless `resume: true`: after a socket reconnect whose media kept flowing, that re-attaches the new socket and keeps the transports (resumed: true; false means they are gone and the client starts over). Returns the router capabilities, the tracks already there (a track may be both listed and announced by media:producer-added, so ignore duplicates by producerId) and the current active speaker (a media:active-speaker received while the join was in flight is newer).',
  }),
  'media:transport-create': request({
    request: z.object({ ...Room, direction: TransportDirection }).strict(),
    response: z.object({ id: MediaId, iceParameters: IceParameters, iceCandidates: z.array(IceCandidate), dtlsParameters: z.object({}).passthrough() }),
    description: 'Create a send or recv transport on the relay (pass the response to device.createSendTransport/createRecvTransport).',
  }),
  'media:transport-connect': request({
    request: z.object({ ...Room, transportId: MediaId, dtlsParameters: DtlsParameters }).strict(),
    response: Ok,
    description: 'The transport\'s DTLS parameters (from the transport\'s "connect" event).',
  }),
  'media:restart-ice': request({
    request: z.object({ ...Room, transportId: MediaId }).strict(),
    response: z.object({ iceParameters: IceParameters }),
    description: 'New ICE credentials after a network change (then transport.restartIce({ iceParameters })).',
  }),
  'media:produce': request({
    request: z.object({ ...Room, transportId: MediaId, kind: MediaKind, rtpParameters: RtpParameters, appData: TrackAppData.optional() }).strict(),
    response: z.object({ producerId: MediaId }),
    description: 'Send a track (from the send transport\'s "produce" event).',
  }),
  'media:consume': request({
    request: z.object({ ...Room, transportId: MediaId, producerId: MediaId, rtpCapabilities: RtpCapabilities }).strict(),
    response: z.object({ consumerId: MediaId, producerId: MediaId, kind: MediaKind, rtpParameters: GeneratedRtpParameters, producerPaused: z.boolean() }),
    description: 'Receive another participant\'s track on a recv transport. The consumer starts paused: call recvTransport.consume({ id: consumerId, ... }) and then media:consumer-resume.',
  }),
  'media:consumer-resume': request({
    request: z.object({ ...Room, consumerId: MediaId }).strict(),
    response: Ok,
    description: 'Start receiving a consumer\'s media.',
  }),
  'media:consumer-pause': request({
    request: z.object({ ...Room, consumerId: MediaId }).strict(),
    response: Ok,
    description: 'Stop receiving a consumer\'s media for now (e.g. its video is hidden).',
  }),
  'media:producer-pause': request({
    request: z.object({ ...Room, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Mute one of your tracks.',
  }),
  'media:producer-resume': request({
    request: z.object({ ...Room, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Unmute one of your tracks.',
  }),
  'media:producer-close': request({
    request: z.object({ ...Room, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Stop one of your tracks for good.',
  }),
  'media:leave': request({
    request: z.object(Room).strict(),
    response: Ok,
    description: 'Leave the room\'s media: closes this device\'s transports, tracks and consumers. Idempotent.',
  }),
};

export const mediaNotices = {
  'media:producer-added': notice({
    payload: MediaProducer.extend({ roomId: RoomId }),
    description: 'Another participant started a track: consume it.',
  }),
  'media:producer-closed': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, userId: UserId, producerId: MediaId, kind: MediaKind }),
    description: 'A participant\'s track ended.',
  }),
  'media:producer-paused': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, userId: UserId, producerId: MediaId, kind: MediaKind, paused: z.boolean() }),
    description: 'A track was muted (paused: true) or unmuted, by its owner or by the host. Sent to the owner too: if it is your track, reflect the new state in your UI (and pause your local producer).',
  }),
  'media:consumer-closed': notice({
    payload: z.object({ roomId: RoomId, consumerId: MediaId, producerId: MediaId }),
    description: 'One of your consumers closed because its track ended; close it in mediasoup-client.',
  }),
  'media:transport-closed': notice({
    payload: z.object({ roomId: RoomId, transportId: MediaId, reason: z.enum(['ice_failed', 'dtls_failed', 'connect_timeout']) }),
    description: 'The relay closed one of your transports (it never connected, or ICE/DTLS failed): create a new one, or join again.',
  }),
  'media:active-speaker': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, userId: UserId }),
    description: 'The dominant speaker of the room changed (media:join tells a joining device who speaks now).',
  }),
  'media:room-lost': notice({
    payload: z.object({ roomId: RoomId, reason: z.enum(['worker_died', 'node_shutdown']), action: z.literal('rejoin') }),
    description: 'The room\'s media server went away. Drop the room\'s transports and call media:join again (the room is recreated, possibly on another relay node); no user action is needed.',
  }),
};
