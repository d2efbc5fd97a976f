/**
 * WebRTC/mediasoup wire objects (RTP parameters and capabilities, ICE and
 * DTLS parameters), shared by the client-facing media events and the
 * hub-to-relay control protocol.
 *
 * Input schemas are bounded (array lengths, string sizes) and drop fields we
 * do not know, so a client can neither smuggle data to the relay nor make it
 * parse megabytes. mediasoup itself then checks that the parameters make
 * sense for the router (RTP_PARAMETERS_INVALID otherwise). Output schemas
 * (what the relay generates) keep unknown fields, so a newer mediasoup can add
 * some without the hub dropping them.
 */
import { z } from 'zod';

const Token = z.string().min(1).max(256);
const MimeType = z.string().min(3).max(64).regex(/^(audio|video)\/[A-Za-z0-9._+-]+$/, 'must be a media type like audio/opus');
const PayloadType = z.number().int().min(0).max(127);
const Ssrc = z.number().int().min(0).max(0xffffffff);

/** Codec fmtp-style parameters: a small flat map of strings and numbers. */
const CodecParameters = z
  .record(z.string().min(1).max(64), z.union([z.string().max(256), z.number()]))
  .refine((p) => Object.keys(p).length <= 32, 'at most 32 codec parameters');

export const MediaKind = z.enum(['audio', 'video']);
export type MediaKind = z.infer<typeof MediaKind>;

export const RtcpFeedback = z.object({ type: z.string().min(1).max(32), parameter: z.string().max(32).optional() });

export const RtpCodecParameters = z.object({
  mimeType: MimeType,
  payloadType: PayloadType,
  clockRate: z.number().int().min(1).max(1_000_000),
  channels: z.number().int().min(1).max(8).optional(),
  parameters: CodecParameters.optional(),
  rtcpFeedback: z.array(RtcpFeedback).max(16).optional(),
});

export const RtpHeaderExtensionParameters = z.object({
  uri: z.string().min(1).max(256),
  id: z.number().int().min(1).max(255),
  encrypt: z.boolean().optional(),
  parameters: CodecParameters.optional(),
});

export const RtpEncodingParameters = z.object({
  ssrc: Ssrc.optional(),
  rid: z.string().min(1).max(32).optional(),
  codecPayloadType: PayloadType.optional(),
  rtx: z.object({ ssrc: Ssrc }).optional(),
  dtx: z.boolean().optional(),
  scalabilityMode: z.string().min(1).max(16).optional(),
  scaleResolutionDownBy: z.number().min(1).max(64).optional(),
  maxBitrate: z.number().int().min(0).max(100_000_000).optional(),
});

export const RtcpParameters = z.object({
  cname: z.string().max(256).optional(),
  reducedSize: z.boolean().optional(),
  mux: z.boolean().optional(),
});

/** What a sending client declares for one track (mediasoup-client's `rtpParameters`). */
export const RtpParameters = z.object({
  mid: z.string().min(1).max(32).optional(),
  codecs: z.array(RtpCodecParameters).min(1).max(16),
  headerExtensions: z.array(RtpHeaderExtensionParameters).max(32).optional(),
  encodings: z.array(RtpEncodingParameters).max(8).optional(),
  rtcp: RtcpParameters.optional(),
});
export type RtpParameters = z.infer<typeof RtpParameters>;

export const RtpCodecCapability = z.object({
  kind: MediaKind,
  mimeType: MimeType,
  preferredPayloadType: PayloadType.optional(),
  clockRate: z.number().int().min(1).max(1_000_000),
  channels: z.number().int().min(1).max(8).optional(),
  parameters: CodecParameters.optional(),
  rtcpFeedback: z.array(RtcpFeedback).max(16).optional(),
});

export const RtpHeaderExtension = z.object({
  kind: MediaKind,
  uri: z.string().min(1).max(256),
  preferredId: z.number().int().min(1).max(255),
  preferredEncrypt: z.boolean().optional(),
  direction: z.enum(['sendrecv', 'sendonly', 'recvonly', 'inactive']).optional(),
});

/** What a receiving device can decode (mediasoup-client's `device.rtpCapabilities`). */
export const RtpCapabilities = z.object({
  codecs: z.array(RtpCodecCapability).max(64).optional(),
  headerExtensions: z.array(RtpHeaderExtension).max(64).optional(),
});
export type RtpCapabilities = z.infer<typeof RtpCapabilities>;

export const DtlsParameters = z.object({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(z.object({ algorithm: z.string().min(1).max(16), value: z.string().min(1).max(256) }))
    .min(1)
    .max(8),
});
export type DtlsParameters = z.infer<typeof DtlsParameters>;

export const IceParameters = z
  .object({ usernameFragment: Token, password: Token, iceLite: z.boolean().optional() })
  .passthrough();

export const IceCandidate = z
  .object({
    foundation: Token,
    priority: z.number(),
    ip: z.string().min(1).max(64),
    protocol: z.enum(['udp', 'tcp']),
    port: z.number().int().min(1).max(65535),
    type: z.string().max(16),
    tcpType: z.string().max(16).optional(),
  })
  .passthrough();

/** Router-generated RTP capabilities/parameters as the relay returns them (unknown fields kept). */
export const RouterRtpCapabilities = z.object({ codecs: z.array(z.object({}).passthrough()).optional(), headerExtensions: z.array(z.object({}).passthrough()).optional() }).passthrough();
export const GeneratedRtpParameters = z.object({ codecs: z.array(z.object({}).passthrough()) }).passthrough();

/**
 * Application tags a client puts on a track ("mic", "camera", "screen"):
 * a few short scalar fields, nothing else.
 */
export const TrackAppData = z
  .record(z.string().min(1).max(32).regex(/^[A-Za-z0-9_]+$/), z.union([z.string().max(64), z.number(), z.boolean()]))
  .refine((d) => Object.keys(d).length <= 8, 'at most 8 appData fields');
export type TrackAppData = z.infer<typeof TrackAppData>;
