/**
 * Reading WebRTC `getStats()` reports: which path media took, the quality
 * figures reported at the end of a call, and the inbound counters tests and
 * debug screens show. Pure functions over a report, so they run anywhere.
 */

/** How the selected ICE candidate pair reaches the peer. */
export type CandidatePath = 'host' | 'srflx' | 'prflx' | 'relay';

export interface Connectivity {
  /** The worse of the two ends: relay if either end is a TURN candidate, else srflx/prflx, else host. */
  path: CandidatePath;
  local: CandidatePath;
  remote: CandidatePath;
  protocol: 'udp' | 'tcp';
  /** Current round trip on the pair, ms. */
  rttMs?: number;
}

export interface QualityFigures {
  codec?: string;
  rttMs?: number;
  jitterMs?: number;
  /** Inbound packets lost / (received + lost), 0..1. */
  lossRatio?: number;
  packetsReceived: number;
  packetsLost: number;
  bytesReceived: number;
  bytesSent: number;
}

export interface InboundTrackStats {
  kind: 'audio' | 'video';
  packetsReceived: number;
  bytesReceived: number;
  packetsLost: number;
  jitterMs?: number;
  /** Audio: samples decoded for playout; grows only when audio is really decoded. */
  totalSamplesReceived?: number;
  audioLevel?: number;
  totalAudioEnergy?: number;
  /** Video: frames decoded. */
  framesDecoded?: number;
  frameWidth?: number;
  codec?: string;
}

type Stat = Record<string, unknown> & { id: string; type: string };

/** The minimal shape of an `RTCStatsReport` (browsers and react-native-webrtc). */
export interface StatsReportLike {
  forEach(cb: (value: unknown) => void): void;
}

function entries(report: StatsReportLike): Map<string, Stat> {
  const map = new Map<string, Stat>();
  report.forEach((v) => {
    const s = v as Stat;
    if (s && typeof s.id === 'string') map.set(s.id, s);
  });
  return map;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const RANK: Record<CandidatePath, number> = { host: 0, prflx: 1, srflx: 2, relay: 3 };

function selectedPair(stats: Map<string, Stat>): Stat | undefined {
  for (const s of stats.values()) {
    if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') {
      const pair = stats.get(s.selectedCandidatePairId);
      if (pair) return pair;
    }
  }
  // Older engines mark the pair itself.
  for (const s of stats.values()) {
    if (s.type === 'candidate-pair' && (s.selected === true || (s.nominated === true && s.state === 'succeeded'))) return s;
  }
  return undefined;
}

/** The path of the selected candidate pair, or undefined before ICE connected. */
export function connectivityFrom(report: StatsReportLike): Connectivity | undefined {
  const stats = entries(report);
  const pair = selectedPair(stats);
  if (!pair) return undefined;
  const local = stats.get(String(pair.localCandidateId));
  const remote = stats.get(String(pair.remoteCandidateId));
  const l = (local?.candidateType as CandidatePath | undefined) ?? 'host';
  const r = (remote?.candidateType as CandidatePath | undefined) ?? 'host';
  const result: Connectivity = {
    path: RANK[l] >= RANK[r] ? l : r,
    local: l,
    remote: r,
    protocol: local?.protocol === 'tcp' ? 'tcp' : 'udp',
  };
  const rtt = num(pair.currentRoundTripTime);
  if (rtt !== undefined) result.rttMs = Math.round(rtt * 1000);
  return result;
}

/** Inbound RTP streams with their decode counters. */
export function inboundFrom(report: StatsReportLike): InboundTrackStats[] {
  const stats = entries(report);
  const out: InboundTrackStats[] = [];
  for (const s of stats.values()) {
    if (s.type !== 'inbound-rtp') continue;
    const kind = (s.kind ?? s.mediaType) === 'video' ? 'video' : 'audio';
    const item: InboundTrackStats = {
      kind,
      packetsReceived: num(s.packetsReceived) ?? 0,
      bytesReceived: num(s.bytesReceived) ?? 0,
      packetsLost: Math.max(0, num(s.packetsLost) ?? 0),
    };
    const jitter = num(s.jitter);
    if (jitter !== undefined) item.jitterMs = Math.round(jitter * 1000);
    for (const key of ['totalSamplesReceived', 'audioLevel', 'totalAudioEnergy', 'framesDecoded', 'frameWidth'] as const) {
      const v = num(s[key]);
      if (v !== undefined) item[key] = v;
    }
    const codec = typeof s.codecId === 'string' ? stats.get(s.codecId) : undefined;
    if (typeof codec?.mimeType === 'string') item.codec = codec.mimeType;
    out.push(item);
  }
  return out;
}

/** The figures a client reports when a call ends (audio first: it is what a call is about). */
export function qualityFrom(report: StatsReportLike): QualityFigures {
  const stats = entries(report);
  const inbound = inboundFrom(report);
  const audio = inbound.filter((s) => s.kind === 'audio');
  const pick = audio.length ? audio : inbound;
  const packetsReceived = pick.reduce((a, s) => a + s.packetsReceived, 0);
  const packetsLost = pick.reduce((a, s) => a + s.packetsLost, 0);
  const figures: QualityFigures = {
    packetsReceived,
    packetsLost,
    bytesReceived: inbound.reduce((a, s) => a + s.bytesReceived, 0),
    bytesSent: 0,
  };
  for (const s of stats.values()) if (s.type === 'outbound-rtp') figures.bytesSent += num(s.bytesSent) ?? 0;
  const codec = pick.find((s) => s.codec)?.codec;
  if (codec) figures.codec = codec;
  const jitters = pick.map((s) => s.jitterMs).filter((v): v is number => v !== undefined);
  if (jitters.length) figures.jitterMs = Math.max(...jitters);
  if (packetsReceived + packetsLost > 0) figures.lossRatio = packetsLost / (packetsReceived + packetsLost);
  const rtt = connectivityFrom(report)?.rttMs ?? remoteInboundRtt(stats);
  if (rtt !== undefined) figures.rttMs = rtt;
  return figures;
}

function remoteInboundRtt(stats: Map<string, Stat>): number | undefined {
  for (const s of stats.values()) {
    if (s.type === 'remote-inbound-rtp') {
      const rtt = num(s.roundTripTime);
      if (rtt !== undefined) return Math.round(rtt * 1000);
    }
  }
  return undefined;
}
