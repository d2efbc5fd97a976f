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
  /** string: keyed hash of an E.164 number -> user id. */
  phoneIndex: (phoneHash: string) => `phone:${phoneHash}`,
};
