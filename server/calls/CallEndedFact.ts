/**
 * What the hub knows about a call when it ends: the single fact a call record
 * is made from. Produced once per call (and once per conference leg) by the
 * call or conference logic, consumed by the CDR writer, which pseudonymises
 * every party before anything is stored. Raw user ids live here only in
 * memory, never in a record.
 */
export type CallKind = 'p2p' | 'relayed' | 'conference' | 'conference-leg';

export type Disposition = 'ANSWERED' | 'NO_ANSWER' | 'BUSY' | 'FAILED' | 'CANCELLED' | 'DECLINED';

/** Q.850 / Matrix-style end reasons (see shared/protocol/calls.ts for the wire enum). */
export type EndReason =
  | 'completed'
  | 'declined'
  | 'busy'
  | 'no_answer'
  | 'cancelled'
  | 'failed'
  | 'answered_elsewhere'
  | 'declined_elsewhere'
  | 'party_lost'
  | 'removed'
  | 'conference_ended';

export interface QualityReport {
  codec?: string;
  rttMs?: number;
  jitterMs?: number;
  /** Fraction lost, 0..1. */
  loss?: number;
}

export interface PartyFacts {
  userId: string;
  role: 'caller' | 'callee' | 'host' | 'participant';
  platform?: string;
  appVersion?: string;
  quality?: QualityReport;
  /** Which ICE path this party reported (host, srflx, relay) when media connected. */
  iceType?: string;
}

export interface CallEndedFact {
  callId: string;
  kind: CallKind;
  /** For conference-leg: the conference's id. */
  parentId?: string;
  parties: PartyFacts[];
  createdAt: number;
  ringingAt?: number;
  answeredAt?: number;
  /** When media first connected. */
  connectedAt?: number;
  endedAt: number;
  disposition: Disposition;
  endReason: EndReason;
  hangupBy: 'caller' | 'callee' | 'host' | 'participant' | 'system';
  mediaPath: 'direct' | 'relay' | 'none';
  relayNode?: string;
  participantCount: number;
}
