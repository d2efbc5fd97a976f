/**
 * The hub-to-relay control protocol, defined once. Hubs connect to a relay
 * node's Socket.IO namespace `/control` with `auth: { secret }`; each request
 * is an event named after its key below, carrying the request payload and an
 * acknowledgement `{ ok: true, ...response }` or `{ ok: false, error }`.
 * Notices are events the relay emits to every connected hub.
 *
 * Every request about a peer names the room and the peer, and the relay
 * checks that the transport/producer/consumer ids it names belong to that
 * peer in that room (TRANSPORT_NOT_FOUND, PRODUCER_NOT_FOUND,
 * CONSUMER_NOT_FOUND otherwise).
 */
import { z } from 'zod';
import type { AckResponse } from './define.js';
import { notice, request } from './define.js';
import { RoomId } from './common.js';
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

/** The Socket.IO namespace of the control channel. */
export const RELAY_CONTROL_NAMESPACE = '/control';

/** A participant of a room as the hub names it (the hub uses `userId:deviceId`). */
export const PeerId = z.string().min(1).max(160).regex(/^[A-Za-z0-9_.:-]+$/, 'must be a peer id');
/** mediasoup object ids (UUIDs). */
export const MediaId = z.string().min(1).max(64).regex(/^[A-Za-z0-9-]+$/, 'must be a media object id');
export const TransportDirection = z.enum(['send', 'recv']);
export type TransportDirection = z.infer<typeof TransportDirection>;

const Peer = { roomId: RoomId, peerId: PeerId };
const None = z.object({}).strict();
const Ok = z.object({});

export const ProducerInfo = z.object({
  peerId: PeerId,
  producerId: MediaId,
  kind: MediaKind,
  paused: z.boolean(),
  appData: TrackAppData.optional(),
});
export type ProducerInfo = z.infer<typeof ProducerInfo>;

/**
 * The room's dominant speaker as the ActiveSpeakerObserver last picked it,
 * while that audio track is still open; null before anyone was picked or once
 * the speaker's track ended. Defaults to null so a hub accepts a relay that
 * does not report it yet.
 */
export const ActiveSpeakerInfo = z.object({ peerId: PeerId, producerId: MediaId }).nullable().default(null);
export type ActiveSpeakerInfo = z.output<typeof ActiveSpeakerInfo>;

export const WorkerLoad = z.object({
  index: z.number().int().min(0),
  pid: z.number().int(),
  /** Share of one core used since the previous report, 0..1 (can exceed 1 briefly). */
  cpu: z.number().min(0),
  routers: z.number().int().min(0),
  transports: z.number().int().min(0),
  producers: z.number().int().min(0),
  consumers: z.number().int().min(0),
  /** Bits per second received from / sent to participants. */
  bitrateIn: z.number().min(0),
  bitrateOut: z.number().min(0),
  /** WebRtcServer port (UDP and TCP) clients reach this worker on. */
  port: z.number().int().min(0),
});
export type WorkerLoad = z.infer<typeof WorkerLoad>;

export const NodeState = z.enum(['serving', 'draining']);
export type NodeState = z.infer<typeof NodeState>;

export const NodeCounts = z.object({
  rooms: z.number().int().min(0),
  peers: z.number().int().min(0),
  routers: z.number().int().min(0),
  transports: z.number().int().min(0),
  producers: z.number().int().min(0),
  consumers: z.number().int().min(0),
});
export type NodeCounts = z.infer<typeof NodeCounts>;

export const relayControlRequests = {
  'room.ensure': request({
    request: z.object({ roomId: RoomId }).strict(),
    response: z.object({ rtpCapabilities: RouterRtpCapabilities, created: z.boolean() }),
    description: 'Create the room if it does not exist (refused with RELAY_UNAVAILABLE while the node drains); returns the router RTP capabilities.',
  }),
  'room.close': request({
    request: z.object({ roomId: RoomId }).strict(),
    response: Ok,
    description: 'Close the room and everything in it. Idempotent.',
  }),
  'room.producers': request({
    request: z.object({ roomId: RoomId }).strict(),
    response: z.object({ producers: z.array(ProducerInfo), activeSpeaker: ActiveSpeakerInfo }),
    description: 'Every track of the room with its peer (e.g. for a host muting a participant), and the current active speaker.',
  }),
  'peer.join': request({
    request: z.object({ ...Peer, resume: z.boolean().optional() }).strict(),
    response: z.object({ rtpCapabilities: RouterRtpCapabilities, producers: z.array(ProducerInfo), resumed: z.boolean(), activeSpeaker: ActiveSpeakerInfo }),
    description: 'Add a peer to an existing room (ROOM_NOT_FOUND otherwise). A peer that is already there starts over (its previous transports are closed) unless `resume` is set, which keeps it as it is (resumed: true). Returns the producers it can consume and the current active speaker (room.activeSpeaker only announces changes).',
  }),
  'peer.leave': request({
    request: z.object(Peer).strict(),
    response: Ok,
    description: 'Remove a peer and close its transports, producers and consumers. Idempotent.',
  }),
  'transport.create': request({
    request: z.object({ ...Peer, direction: TransportDirection }).strict(),
    response: z.object({ id: MediaId, iceParameters: IceParameters, iceCandidates: z.array(IceCandidate), dtlsParameters: z.object({}).passthrough() }),
    description: 'Create a WebRtcTransport for the peer on its router\'s WebRtcServer (UDP, TCP fallback).',
  }),
  'transport.connect': request({
    request: z.object({ ...Peer, transportId: MediaId, dtlsParameters: DtlsParameters }).strict(),
    response: Ok,
    description: 'Give the transport the client\'s DTLS parameters.',
  }),
  'transport.restartIce': request({
    request: z.object({ ...Peer, transportId: MediaId }).strict(),
    response: z.object({ iceParameters: IceParameters }),
    description: 'New ICE credentials for a transport whose connection broke.',
  }),
  produce: request({
    request: z.object({ ...Peer, transportId: MediaId, kind: MediaKind, rtpParameters: RtpParameters, appData: TrackAppData.optional() }).strict(),
    response: z.object({ producerId: MediaId }),
    description: 'Start receiving a track from the peer on one of its send transports.',
  }),
  consume: request({
    request: z.object({ ...Peer, transportId: MediaId, producerId: MediaId, rtpCapabilities: RtpCapabilities }).strict(),
    response: z.object({ consumerId: MediaId, producerId: MediaId, kind: MediaKind, rtpParameters: GeneratedRtpParameters, producerPaused: z.boolean() }),
    description: 'Send another peer\'s track of the same room to this peer, on one of its recv transports. Created paused; resume with consumer.resume once the client is ready.',
  }),
  'consumer.resume': request({
    request: z.object({ ...Peer, consumerId: MediaId }).strict(),
    response: Ok,
    description: 'Start sending a consumer\'s media.',
  }),
  'consumer.pause': request({
    request: z.object({ ...Peer, consumerId: MediaId }).strict(),
    response: Ok,
    description: 'Stop sending a consumer\'s media (e.g. the video is not shown).',
  }),
  'producer.pause': request({
    request: z.object({ ...Peer, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Mute: stop forwarding the peer\'s track.',
  }),
  'producer.resume': request({
    request: z.object({ ...Peer, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Unmute.',
  }),
  'producer.close': request({
    request: z.object({ ...Peer, producerId: MediaId }).strict(),
    response: Ok,
    description: 'Stop the track for good; its consumers close.',
  }),
  'node.drain': request({
    request: z.object({ draining: z.boolean() }).strict(),
    response: z.object({ state: NodeState }),
    description: 'Drain (no new rooms; existing rooms go on) or serve again.',
  }),
  'node.dump': request({
    request: None,
    response: z.object({ nodeId: z.string(), state: NodeState, counts: NodeCounts, workers: z.array(WorkerLoad), roomIds: z.array(RoomId) }),
    description: 'Counts of the node\'s rooms and mediasoup objects, per worker.',
  }),
};

export const RoomLostReason = z.enum(['worker_died', 'node_shutdown']);
export const TransportClosedReason = z.enum(['ice_failed', 'dtls_failed', 'connect_timeout']);
export const ConsumerClosedReason = z.enum(['producer_closed']);

export const relayControlNotices = {
  'room.activeSpeaker': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, producerId: MediaId }),
    description: 'The dominant speaker of the room changed (the current one is also in the peer.join and room.producers responses).',
  }),
  'room.closed': notice({
    payload: z.object({ roomId: RoomId, reason: z.enum(['idle']) }),
    description: 'The relay closed a room on its own (it stayed empty too long).',
  }),
  'rooms.lost': notice({
    payload: z.object({ roomIds: z.array(RoomId), reason: RoomLostReason }),
    description: 'These rooms are gone (their worker died, or the node is shutting down); their peers must join again, which recreates the room.',
  }),
  'peer.producerAdded': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, producerId: MediaId, kind: MediaKind, paused: z.boolean(), appData: TrackAppData.optional() }),
    description: 'A peer started sending a track; the other peers can consume it.',
  }),
  'peer.producerClosed': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, producerId: MediaId, kind: MediaKind }),
    description: 'A peer\'s track ended (closed, or its transport or peer went away).',
  }),
  'peer.producerPaused': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, producerId: MediaId, kind: MediaKind, paused: z.boolean() }),
    description: 'A peer muted or unmuted a track.',
  }),
  'consumer.closed': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, consumerId: MediaId, producerId: MediaId, reason: ConsumerClosedReason }),
    description: 'A peer\'s consumer closed without it asking (its producer or transport went away).',
  }),
  'transport.closed': notice({
    payload: z.object({ roomId: RoomId, peerId: PeerId, transportId: MediaId, reason: TransportClosedReason }),
    description: 'The relay closed a peer\'s transport: ICE or DTLS failed, or it never connected in time.',
  }),
};

export type RelayControlRequests = typeof relayControlRequests;
export type RelayControlNotices = typeof relayControlNotices;
export type RelayRequestName = keyof RelayControlRequests;
export type RelayNoticeName = keyof RelayControlNotices;
export type RelayRequest<K extends RelayRequestName> = z.input<RelayControlRequests[K]['request']>;
export type RelayResponse<K extends RelayRequestName> = z.output<RelayControlRequests[K]['response']>;
export type RelayNotice<K extends RelayNoticeName> = z.output<RelayControlNotices[K]['payload']>;

/** Socket.IO typing of the control namespace. */
export type RelayControlClientEvents = {
  [K in RelayRequestName]: (payload: RelayRequest<K>, ack: (res: AckResponse<RelayResponse<K>>) => void) => void;
};
export type RelayControlServerEvents = {
  [K in RelayNoticeName]: (payload: RelayNotice<K>) => void;
};

export function isRelayRequestName(name: string): name is RelayRequestName {
  return Object.prototype.hasOwnProperty.call(relayControlRequests, name);
}

/**
 * What a relay node publishes in Redis every LOAD_REPORT_INTERVAL_MS (the
 * registry both the relay and the hubs read and write through these keys).
 */
export const RelayNodeReport = z.object({
  nodeId: z.string().min(1).max(64),
  /** Base URL of the node's control/HTTP server; hubs connect to `${controlUrl}/control`. */
  controlUrl: z.string().url(),
  state: NodeState,
  /** 0..1: the larger of mean worker CPU and consumer fill (consumers / capacity). */
  load: z.number().min(0),
  reportedAt: z.number(),
  intervalMs: z.number().int().min(1),
  startedAt: z.number(),
  counts: NodeCounts,
  workers: z.array(WorkerLoad),
});
export type RelayNodeReport = z.infer<typeof RelayNodeReport>;

/**
 * Registry keys share one hash tag, so the relay's report (SET + ZADD in one
 * MULTI) and the hubs' MGET of every node work on Redis Cluster too.
 */
export const relayRegistryKeys = {
  /** sorted set: nodeId scored by the epoch ms of its last report. */
  nodes: 'relay:{registry}:nodes',
  /** string (JSON RelayNodeReport) with a TTL of a few report intervals: gone = node gone. */
  node: (nodeId: string) => `relay:{registry}:node:${nodeId}`,
};

/** A node whose last report is older than this many report intervals is not used. */
export const RELAY_STALE_INTERVALS = 2.5;
