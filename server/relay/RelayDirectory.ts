import type { Redis } from 'ioredis';
import type { Logger } from '../../shared/runtime/log.js';
import { keys } from '../keys.js';
import { AppError } from '../../shared/protocol/errors.js';
import { RelayNodeReport } from '../../shared/protocol/relayControl.js';
import { eligibleNodes, twoRandomChoices, type PlacementPolicy } from './placement.js';

export interface RelayDirectoryOptions {
  redis: Redis;
  log: Logger;
  policy: PlacementPolicy;
  /** How long a placement counts toward its node's load. */
  placementWindowMs: number;
  /** TTL of room -> node mappings. */
  roomTtlS: number;
  random?: () => number;
}

/**
 * Between the two (or one) candidates, atomically: score = load + placed *
 * cost (placement.ts placementScore), lowest wins, first on ties; count the
 * placement in the winner's window counter. Shared by every hub, so a burst
 * from several hubs spreads instead of herding onto the node that looked
 * idlest in the last report.
 *
 * KEYS: counters of the candidates. ARGV: windowMs, roomCost, load of each.
 * Returns the 1-based index of the chosen candidate.
 */
const PLACE_SCRIPT = `
local window = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local best, bestScore = 1, nil
for i = 1, #KEYS do
  local placed = tonumber(redis.call('GET', KEYS[i]) or '0')
  local score = tonumber(ARGV[2 + i]) + placed * cost
  if bestScore == nil or score < bestScore then
    best, bestScore = i, score
  end
end
if redis.call('INCR', KEYS[best]) == 1 then
  redis.call('PEXPIRE', KEYS[best], window)
end
return best
`;

/**
 * Compare-and-set of a room's node: set it to ARGV[2] if it currently holds
 * ARGV[1] ('' meaning absent); either way return what it holds afterwards
 * (so a hub that lost the race uses the winner's node).
 */
const ASSIGN_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return ARGV[2]
end
return current
`;

/** Delete the mapping only if it still names ARGV[1]. */
const FORGET_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * The relay registry as hubs see it: live node reports (a node is live while
 * its report key has not expired), room placement by load, and the sticky
 * room -> node mapping in Redis (`relay:room:<roomId>`).
 */
export class RelayDirectory {
  readonly #opts: RelayDirectoryOptions;

  constructor(opts: RelayDirectoryOptions) {
    this.#opts = opts;
  }

  /** Every live node (any state), by node id. */
  async nodes(): Promise<RelayNodeReport[]> {
    const { redis, log } = this.#opts;
    const ids = await redis.zrange(keys.relayNodes(), 0, -1);
    if (ids.length === 0) return [];
    const raws = await redis.mget(ids.map((id) => keys.relayNode(id)));
    const out: RelayNodeReport[] = [];
    const gone: string[] = [];
    raws.forEach((raw, i) => {
      if (raw === null) {
        gone.push(ids[i]!);
        return;
      }
      try {
        const parsed = RelayNodeReport.safeParse(JSON.parse(raw));
        if (parsed.success) out.push(parsed.data);
        else log.warn({ nodeId: ids[i] }, 'malformed relay report ignored');
      } catch {
        log.warn({ nodeId: ids[i] }, 'unreadable relay report ignored');
      }
    });
    // Nodes whose report expired long ago leave the index (they re-add themselves if they come back).
    if (gone.length) void this.#prune(gone);
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** A live node's latest report. */
  async node(nodeId: string): Promise<RelayNodeReport | undefined> {
    const raw = await this.#opts.redis.get(keys.relayNode(nodeId));
    if (raw === null) return undefined;
    try {
      const parsed = RelayNodeReport.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Chooses a node for a new room (RELAY_UNAVAILABLE if none is serving) and counts the placement. */
  async choose(exclude: ReadonlySet<string> = new Set()): Promise<RelayNodeReport> {
    const { redis, policy, placementWindowMs } = this.#opts;
    const eligible = eligibleNodes((await this.nodes()).filter((n) => !exclude.has(n.nodeId)), policy);
    if (eligible.length === 0) throw new AppError('RELAY_UNAVAILABLE');
    const candidates = twoRandomChoices(eligible, this.#opts.random);
    const chosen = (await redis.eval(
      PLACE_SCRIPT,
      candidates.length,
      ...candidates.map((c) => keys.relayPlaced(c.nodeId)),
      placementWindowMs,
      policy.roomCost,
      ...candidates.map((c) => c.load),
    )) as number;
    const node = candidates[chosen - 1] ?? candidates[0]!;
    if (node.load > policy.maxLoad) this.#opts.log.warn({ nodeId: node.nodeId, load: node.load }, 'every relay node is over the load limit; placing on the least loaded');
    return node;
  }

  /** The node a room is mapped to, if any. */
  roomNode(roomId: string): Promise<string | null> {
    return this.#opts.redis.get(keys.relayRoom(roomId));
  }

  /** Maps the room to `nodeId` if it still maps to `expected` (null: unmapped); returns the mapping that won. */
  async assign(roomId: string, expected: string | null, nodeId: string): Promise<string> {
    return (await this.#opts.redis.eval(ASSIGN_SCRIPT, 1, keys.relayRoom(roomId), expected ?? '', nodeId, this.#opts.roomTtlS)) as string;
  }

  /** Extends a live mapping's lifetime. */
  async touch(roomId: string): Promise<void> {
    await this.#opts.redis.expire(keys.relayRoom(roomId), this.#opts.roomTtlS);
  }

  /** Removes the mapping if it still names `nodeId`. */
  async forget(roomId: string, nodeId: string): Promise<void> {
    await this.#opts.redis.eval(FORGET_SCRIPT, 1, keys.relayRoom(roomId), nodeId);
  }

  async #prune(ids: string[]): Promise<void> {
    const { redis } = this.#opts;
    try {
      // Only entries not refreshed for a minute: a node between two reports keeps its place.
      const scores = await redis.zmscore(keys.relayNodes(), ...ids);
      const cutoff = Date.now() - 60_000;
      const stale = ids.filter((_, i) => scores[i] !== null && Number(scores[i]) < cutoff);
      if (stale.length) await redis.zrem(keys.relayNodes(), ...stale);
    } catch {
      // Pruning is housekeeping; the next listing tries again.
    }
  }
}
