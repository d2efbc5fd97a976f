import { relayRegistryKeys } from '../shared/protocol/relayControl.js';

/**
 * The Redis key plan, in one place. A user's own keys share the `{uid}` hash
 * tag so per-user transactions and complete erasure work on Redis Cluster
 * too. Personal identifiers are never part of a key in the clear: they are
 * looked up through keyed hashes. Subsystems add their keys here.
 */
export const keys = {
  /** hash: the user's profile (E.164 number, display name, created, age, gender). */
  user: (uid: string) => `user:{${uid}}`,
  /** hash: sessionId -> JSON session (device, created, refresh-token hash). */
  userSessions: (uid: string) => `user:{${uid}}:sessions`,
  /** hash: deviceId -> JSON device (platform, push tokens). */
  userDevices: (uid: string) => `user:{${uid}}:devices`,
  /** string (TTL ERASURE_TOMBSTONE_TTL_S): the account is being or was just erased; no profile, session or book may be written. */
  userErased: (uid: string) => `user:{${uid}}:erased`,
  /** string: keyed hash of an E.164 number -> user id. */
  phoneIndex: (phoneHash: string) => `phone:${phoneHash}`,
  /** hash: the user's address book: keyed hash of a number or email -> JSON { ids: client ids, anon }. Never names or plain values. */
  userBook: (uid: string) => `user:{${uid}}:book`,
  /** string counter (fixed window, TTL): a per-user quota, e.g. `discovery` (new numbers checked per day), `contacts` (address-book requests per hour). */
  userQuota: (uid: string, name: string) => `user:{${uid}}:quota:${name}`,
  /** set: keyed hashes of numbers already charged to quota `name` in its current window (checking one again is free); expires with the window. */
  userQuotaSeen: (uid: string, name: string) => `user:{${uid}}:quota:${name}:seen`,
  /** set: user ids whose address book holds this keyed number/email hash (reverse index for contact:joined). One slot per hash. */
  contactOwners: (identifierHash: string) => `contacts:owners:{${identifierHash}}`,
  /** hash: the pending one-time code of a number (keyed hash of code, attempts, sentAt), TTL = code lifetime. */
  otp: (phoneHash: string) => `otp:{${phoneHash}}`,
  /** Rate-limit window (string counter or sorted set, TTL). `id` is a keyed hash or a number prefix, never a plain number or IP. */
  rateLimit: (scope: string, id: string) => `rl:${scope}:{${id}}`,
  /**
   * 1:1 calls. Every call key shares the `{calls}` hash tag: a transition that
   * touches a call and both parties' busy slots is one atomic script, on Redis
   * Cluster too (call setup rates are far below one shard's throughput).
   */
  /** hash: one call (state, parties, bound devices, timestamps, reports), TTL. */
  call: (callId: string) => `call:{calls}:${callId}`,
  /** list: the caller's signals sent before the answer (for devices that come online while ringing), TTL. */
  callEarlySignals: (callId: string) => `call:{calls}:${callId}:early`,
  /** set: session ids of the callee's devices ringing for the call, TTL. */
  callRinging: (callId: string) => `call:{calls}:${callId}:ringing`,
  /** string: the call a user is in (busy slot), TTL. */
  userCall: (uid: string) => `call:{calls}:user:${uid}`,
  /** sorted set: ids of calls whose record names the user, scored by creation (epoch ms), TTL: what account erasure must clear. */
  userCalls: (uid: string) => `call:{calls}:user:${uid}:calls`,
  /** sorted set: `<callId>|<timer>` scored by due time (epoch ms); every hub scans it, one claims each entry. */
  callTimers: () => 'call:{calls}:due',

  // Call records. Each shard stream has its own hash tag, so a cluster spreads
  // them; a shard's idempotency markers share its tag (atomic with the XADD).
  /** stream: call records of shard n (0..CDR_SHARDS-1). */
  cdrShard: (n: number) => `cdr:{${n}}`,
  /** hash: eventId -> stream id of records of shard n that ended on `day` (YYYY-MM-DD, UTC); TTL. */
  cdrSeen: (n: number, day: string) => `cdr:{${n}}:seen:${day}`,
  /** stream: entries a consumer group gave up on, with where they came from. */
  cdrDead: () => 'cdr:dead',
  /** stream: one entry per support lookup (operator, reason, count; no phone number). */
  cdrAudit: () => 'cdr:audit',
  /**
   * A consumer group's keys for one month (`YYYY-MM`), all in one slot so an
   * aggregate update and its idempotency marker are one atomic script:
   * `cdr:{<group>:<month>}:<suffix>` (suffix e.g. `month`, `day:2024-06-01`, `done:2024-06-01`).
   */
  cdrGroupMonth: (group: string, month: string, suffix: string) => `cdr:{${group}:${month}}:${suffix}`,

  // Relay registry and placement. Node keys are written by relay nodes
  // (shared/protocol/relayControl.ts relayRegistryKeys is the source of truth).
  /** sorted set: relay node id scored by the epoch ms of its last load report. */
  relayNodes: () => relayRegistryKeys.nodes,
  /** string: a relay node's JSON load report, TTL of a few report intervals (gone = node gone). */
  relayNode: (nodeId: string) => relayRegistryKeys.node(nodeId),
  /** counter: rooms placed on a node in the current placement window, TTL RELAY_PLACEMENT_WINDOW_MS; one slot for the placement script. */
  relayPlaced: (nodeId: string) => `relay:{placed}:${nodeId}`,
  /** string: the relay node a room lives on, TTL RELAY_ROOM_TTL_S (refreshed on open). */
  relayRoom: (roomId: string) => `relay:room:${roomId}`,
  /** set: `userId:deviceId` allowed to use a room's media, TTL RELAY_ROOM_TTL_S. */
  mediaMembers: (roomId: string) => `media:members:${roomId}`,

  /**
   * Conferences. Every conference key shares the `{conf}` hash tag (as calls
   * share `{calls}`): a transition touching a conference, its participants
   * and the shared timer set is one atomic script, on Redis Cluster too.
   */
  /** hash: one conference (state, host, creator, times, max size, leg counter), TTL. */
  conference: (id: string) => `conf:{conf}:${id}`,
  /** hash: userId -> JSON participant (bound session/device, joinedAt, legId, lostAt), TTL. */
  conferenceParticipants: (id: string) => `conf:{conf}:${id}:participants`,
  /** set: user ids who may join (invited, or participants), TTL. */
  conferenceAllowed: (id: string) => `conf:{conf}:${id}:allowed`,
  /** hash: userId -> JSON ringing invitation (invitedBy, invitedAt, expiresAt), TTL. */
  conferenceRinging: (id: string) => `conf:{conf}:${id}:ringing`,
  /** set: every user id that ever joined (the conference record's participant count), TTL. */
  conferenceEveryone: (id: string) => `conf:{conf}:${id}:everyone`,
  /** hash: factId -> JSON leg/conference fact waiting to be emitted (claimed once through its timer), TTL. */
  conferenceFacts: (id: string) => `conf:{conf}:${id}:facts`,
  /** set: conference ids a user is in or invited to (a lookup aid; readers re-check the conference), TTL. */
  userConferences: (uid: string) => `conf:{conf}:user:${uid}`,
  /** sorted set: `<conferenceId>|<timer>` scored by due time (ring, grace, max, fact); every hub scans it, one claims each entry. */
  conferenceTimers: () => 'conf:{conf}:due',
  /** hash: call activity counts of one minute (enums only), 2-day TTL. */
  activityMinute: (minuteEpochMs: number) => `stats:calls:${minuteEpochMs}`,
};
