/**
 * Room placement, the pure part: which relay nodes may take a new room, and
 * which of them to try. LiveKit's selector and Jitsi's bridge selection do
 * the same: leave out draining and overloaded nodes, sample two nodes at
 * random and take the less loaded one ("power of two choices": close to
 * least-loaded, without every hub stampeding onto the same node between two
 * load reports), and count rooms placed in the last few seconds into the
 * load, because a node's report lags behind the rooms just sent to it.
 *
 * The final choice between the two candidates is made atomically in Redis
 * (RelayDirectory's placement script) with the same formula as
 * `placementScore`, using counters shared by every hub.
 */
import type { RelayNodeReport } from '../../shared/protocol/relayControl.js';

export interface PlacementPolicy {
  /** Nodes reporting a higher load take no new rooms while another node is below it. */
  maxLoad: number;
  /** Load one recently placed room adds to its node. */
  roomCost: number;
}

/**
 * Nodes that may take a new room: serving, and at or below maxLoad. When every
 * serving node is above it, all serving nodes stay eligible (an overloaded
 * relay beats no call at all); draining nodes never are.
 */
export function eligibleNodes(nodes: readonly RelayNodeReport[], policy: PlacementPolicy): RelayNodeReport[] {
  const serving = nodes.filter((n) => n.state === 'serving');
  const underLimit = serving.filter((n) => n.load <= policy.maxLoad);
  return underLimit.length ? underLimit : serving;
}

/** One or two distinct nodes drawn uniformly at random, in random order. */
export function twoRandomChoices<T>(items: readonly T[], random: () => number = Math.random): T[] {
  if (items.length <= 1) return [...items];
  const i = Math.floor(random() * items.length) % items.length;
  let j = Math.floor(random() * (items.length - 1)) % (items.length - 1);
  if (j >= i) j += 1;
  return [items[i]!, items[j]!];
}

/** A node's load as placement sees it: its last report plus the rooms placed on it since. */
export function placementScore(load: number, recentlyPlaced: number, policy: Pick<PlacementPolicy, 'roomCost'>): number {
  return load + recentlyPlaced * policy.roomCost;
}

/** Index of the candidate with the lowest score; the first wins ties (candidates come in random order). */
export function pickLowest(scores: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! < scores[best]!) best = i;
  return best;
}
