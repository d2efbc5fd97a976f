import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { createLogger } from '../../shared/runtime/log.js';
import { loadRelayConfig, type RelayConfig } from '../../relay/config.js';
import { RelayNode } from '../../relay/RelayNode.js';
import type { AckResponse } from '../../shared/protocol/define.js';
import {
  RELAY_CONTROL_NAMESPACE,
  type RelayControlClientEvents,
  type RelayControlServerEvents,
  type RelayRequest,
  type RelayRequestName,
  type RelayResponse,
} from '../../shared/protocol/relayControl.js';
import { openSocket } from './sockets.js';

/** One secret for every relay and hub a test file starts, unless it asks for another. */
export const TEST_RELAY_SECRET = randomBytes(24).toString('hex');

/** Environment for a relay node under test: one small worker by default, free ports, fast reports. */
export function testRelayEnv(redisUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RELAY_HOST: '127.0.0.1',
    RELAY_PORT: '0',
    REDIS_URL: redisUrl,
    RELAY_SECRET: TEST_RELAY_SECRET,
    RELAY_WORKERS: '1',
    RELAY_RTC_LISTEN_IP: '127.0.0.1',
    RELAY_RTC_PORT_BASE: '0',
    // Fast enough for drop-out tests, slow enough that a busy test process
    // (the node runs in it) does not miss 2.5 reports and drop out by mistake.
    LOAD_REPORT_INTERVAL_MS: '500',
    ...overrides,
  };
}

export function testRelayConfig(redisUrl: string, overrides: Record<string, string> = {}): RelayConfig {
  return loadRelayConfig(testRelayEnv(redisUrl, overrides));
}

/** An in-process relay node against the given Redis. */
export function startTestRelay(redisUrl: string, overrides: Record<string, string> = {}): Promise<RelayNode> {
  const config = testRelayConfig(redisUrl, overrides);
  return RelayNode.start(config, { log: createLogger({ level: config.LOG_LEVEL, name: 'relay' }) });
}

export type ControlSocket = Socket<RelayControlServerEvents, RelayControlClientEvents>;

/** A raw control-channel client (what a hub's RelayLink does, minus retries). */
export function connectControl(controlUrl: string, secret: string | null = TEST_RELAY_SECRET): Promise<ControlSocket> {
  return openSocket(`${controlUrl}${RELAY_CONTROL_NAMESPACE}`, secret === null ? {} : { secret, hubId: 'test' });
}

/** Sends a control request and resolves with the raw ack. */
export function control<K extends RelayRequestName>(
  socket: ControlSocket,
  name: K,
  payload: RelayRequest<K> | Record<string, unknown>,
  timeoutMs = 5000,
): Promise<AckResponse<RelayResponse<K>>> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<AckResponse<RelayResponse<K>>> }).emitWithAck(name, payload);
}

/** Like control(), but throws unless the ack is ok. */
export async function controlOk<K extends RelayRequestName>(socket: ControlSocket, name: K, payload: RelayRequest<K>): Promise<RelayResponse<K>> {
  const res = await control(socket, name, payload);
  if (!res.ok) throw new Error(`${name} failed: ${res.error.code} ${res.error.message}`);
  return res;
}

/** The RTCP feedback both sides of the tests offer for VP8 (a fresh copy each time). */
const vp8Feedback = () => [
  { type: 'nack', parameter: '' },
  { type: 'nack', parameter: 'pli' },
  { type: 'ccm', parameter: 'fir' },
  { type: 'goog-remb', parameter: '' },
];

/** Realistic producer parameters (adapted from mediasoup's own test suite): Opus audio and VP8 video with RTX. */
export function audioRtpParameters(ssrc = 11111111) {
  return {
    mid: 'AUDIO',
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1, usedtx: 1 }, rtcpFeedback: [{ type: 'transport-cc', parameter: '' }] }],
    headerExtensions: [
      { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 10 },
      { uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 12 },
    ],
    encodings: [{ ssrc }],
    rtcp: { cname: 'audio-cname', reducedSize: true },
  };
}

export function videoRtpParameters(ssrc = 22222222) {
  return {
    mid: 'VIDEO',
    codecs: [
      {
        mimeType: 'video/VP8',
        payloadType: 96,
        clockRate: 90000,
        rtcpFeedback: vp8Feedback(),
      },
      { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 96 } },
    ],
    headerExtensions: [
      { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 10 },
      { uri: 'urn:3gpp:video-orientation', id: 13 },
    ],
    encodings: [{ ssrc, rtx: { ssrc: ssrc + 1 } }],
    rtcp: { cname: 'video-cname', reducedSize: true },
  };
}

/** A receiving device's capabilities (Opus + VP8 with RTX), adapted from mediasoup's tests. */
export function deviceRtpCapabilities() {
  return {
    codecs: [
      { mimeType: 'audio/opus', kind: 'audio' as const, preferredPayloadType: 100, clockRate: 48000, channels: 2, rtcpFeedback: [{ type: 'nack', parameter: '' }] },
      {
        mimeType: 'video/VP8',
        kind: 'video' as const,
        preferredPayloadType: 101,
        clockRate: 90000,
        rtcpFeedback: vp8Feedback(),
      },
      { mimeType: 'video/rtx', kind: 'video' as const, preferredPayloadType: 102, clockRate: 90000, parameters: { apt: 101 }, rtcpFeedback: [] },
    ],
    headerExtensions: [
      { kind: 'audio' as const, uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, preferredEncrypt: false },
      { kind: 'video' as const, uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, preferredEncrypt: false },
      { kind: 'audio' as const, uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', preferredId: 10, preferredEncrypt: false },
      { kind: 'video' as const, uri: 'urn:3gpp:video-orientation', preferredId: 11, preferredEncrypt: false },
    ],
  };
}

/** A device that can only decode H.264 audio-less video: cannot consume Opus or VP8. */
export function h264OnlyCapabilities() {
  return {
    codecs: [
      {
        mimeType: 'video/H264',
        kind: 'video' as const,
        preferredPayloadType: 101,
        clockRate: 90000,
        parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
        rtcpFeedback: [],
      },
    ],
    headerExtensions: [],
  };
}

/** DTLS parameters as a browser would send them. */
export function clientDtlsParameters() {
  return {
    role: 'client' as const,
    fingerprints: [{ algorithm: 'sha-256', value: '82:5A:68:3D:36:C3:0A:DE:AF:E7:32:43:D2:88:83:57:AC:2D:65:E5:80:C4:B6:FB:AF:1A:A0:21:9F:6D:0C:AD' }],
  };
}

/**
 * Polls until `check` returns a value other than undefined/false, or fails
 * after `timeoutMs` (a deadline for things that happen on a timer, such as
 * load reports; nothing is asserted about how long it took).
 */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 8000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
