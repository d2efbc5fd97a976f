import { z } from 'zod';
import { envBool, envInt, envKeyRing, envList, parseEnv } from '../shared/env.js';

/**
 * Every hub setting, read from the environment once at startup. Each field's
 * description is the documentation (README's configuration table is generated
 * from it by `npm run docs`).
 */
export const hubEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('Runtime mode; production refuses development-only providers.'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
  HUB_HOST: z.string().default('0.0.0.0').describe('Address the hub listens on.'),
  HUB_PORT: envInt(0, 65535).default(8080).describe('Port of the hub (HTTP + Socket.IO); 0 picks a free port.'),
  HUB_PUBLIC_URL: z.string().url().optional().describe('URL clients use to reach the hub (for logs and links).'),
  HUB_ID: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).optional().describe('Name of this hub process in logs and metrics; random when unset.'),
  REDIS_URL: z.string().url().describe('Redis connection URL (redis://host:port/db).'),
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v): boolean | number | string[] => {
      if (v === 'false' || v === '0') return false;
      // Trusts every hop: only for tests and a hub that is reachable solely through a proxy.
      if (v === 'true') return true;
      if (/^[1-9]\d?$/.test(v)) return Number(v);
      return v.split(',').map((s) => s.trim()).filter(Boolean);
    })
    .describe('Client IPs for rate limits come from X-Forwarded-For only through trusted proxies: false, true (every hop), a hop count (e.g. 1 behind one load balancer), or a comma-separated list of proxy addresses/CIDRs.'),
  HTTP_BODY_LIMIT: envInt(1024, 10 * 1024 * 1024).default(256 * 1024).describe('Largest accepted HTTP body in bytes.'),
  SOCKET_MAX_PAYLOAD: envInt(1024, 10 * 1024 * 1024).default(128 * 1024).describe('Largest accepted Socket.IO message in bytes.'),
  SOCKET_EVENTS_PER_10S: envInt(10, 100000).default(200).describe('Events one socket may send per 10 seconds before it is disconnected as a flooder.'),

  JWT_KEYS: envKeyRing.describe('HS256 verification keys as kid:secret pairs (comma separated); rotation keeps old kids here.'),
  JWT_SIGNING_KID: z.string().describe('The kid in JWT_KEYS used to sign new access tokens.'),
  JWT_ISSUER: z.string().default('callhub').describe('iss claim of access tokens.'),
  JWT_AUDIENCE: z.string().default('callhub-clients').describe('aud claim of access tokens.'),
  ACCESS_TOKEN_TTL_S: envInt(30, 86400).default(900).describe('Access token lifetime in seconds.'),
  REFRESH_TOKEN_TTL_S: envInt(300, 365 * 86400).default(30 * 86400).describe('Refresh token lifetime in seconds.'),
  REFRESH_PER_SESSION_PER_HOUR: envInt(1, 100000).default(60).describe('Refresh-token rotations one session may make per sliding hour (POST /v1/auth/refresh; past it 429 RATE_LIMITED, the token stays valid).'),
  ERASURE_TOMBSTONE_TTL_S: envInt(60, 86400).default(600).describe('Seconds an erased account keeps its tombstone key, which stops a sign-in racing the erasure from writing a session, profile or address book for it.'),
  IDENTITY_HMAC_KEYS: envKeyRing.describe('Keys (kid:secret) for the keyed hashes of phone numbers and address-book entries; the first is current.'),

  OTP_PROVIDER: z.enum(['log', 'webhook']).default('log').describe('How one-time codes are delivered: log (development only) or webhook.'),
  OTP_WEBHOOK_URL: z.string().url().optional().describe('Gateway URL the webhook provider POSTs { to, channel, code, locale } to.'),
  OTP_WEBHOOK_SECRET: z.string().min(16).optional().describe('HMAC-SHA256 key for the webhook signature header.'),
  OTP_TTL_S: envInt(1, 600).default(300).describe('Lifetime of a one-time code in seconds (NIST 800-63B: at most 600).'),
  OTP_MAX_ATTEMPTS: envInt(1, 20).default(5).describe('Wrong tries allowed per code.'),
  OTP_RESEND_COOLDOWN_S: envInt(0, 600).default(30).describe('Minimum seconds between two codes to the same number.'),
  OTP_PER_NUMBER_PER_HOUR: envInt(1, 1000).default(5).describe('Codes sent to one number per hour.'),
  OTP_PER_IP_PER_HOUR: envInt(1, 100000).default(20).describe('Codes requested from one client IP per hour.'),
  OTP_PER_PREFIX_PER_HOUR: envInt(1, 1000000).default(100).describe('Codes sent to one number prefix (country code + first digits) per hour: SMS-pumping defence.'),
  OTP_PREFIX_DIGITS: envInt(2, 14).default(6).describe('Leading digits of the E.164 number (country code included) that form the prefix OTP_PER_PREFIX_PER_HOUR counts.'),
  OTP_VERIFY_PER_IP_PER_HOUR: envInt(1, 100000).default(60).describe('Code verifications attempted from one client IP per hour (on top of OTP_MAX_ATTEMPTS per code).'),
  OTP_WEBHOOK_TIMEOUT_MS: envInt(100, 60000).default(5000).describe('Timeout of one webhook delivery attempt in milliseconds.'),
  OTP_WEBHOOK_RETRIES: envInt(0, 10).default(2).describe('Extra webhook attempts after a network error, timeout, 408, 429 or 5xx (exponential backoff from 200 ms).'),
  PHONE_COUNTRIES: envList.optional().describe('Allowed ISO country codes for sign-up (e.g. US,GB,DE); unset allows all.'),
  DISCOVERY_NEW_NUMBERS_PER_DAY: envInt(1, 1000000).default(2000).describe('New address-book numbers one account may check per day.'),
  CONTACTS_MAX_ENTRIES: envInt(1, 100000).default(5000).describe('Address-book entries accepted in one upload (PUT or PATCH add).'),
  CONTACTS_MAX_IDENTIFIERS: envInt(1, 1000000).default(20000).describe('Distinct numbers and emails one stored address book may hold; also the most numbers and emails one request may name, counted as sent (before duplicates merge or anything is parsed).'),
  CONTACTS_BODY_LIMIT: envInt(1024, 50 * 1024 * 1024).default(2 * 1024 * 1024).describe('Largest accepted address-book upload body in bytes.'),
  CONTACTS_REQUESTS_PER_HOUR: envInt(1, 100000).default(60).describe('Address-book requests (PUT, PATCH, DELETE /v1/contacts) one account may make per hour (fixed window; past it 429 RATE_LIMITED).'),

  CALL_RING_TIMEOUT_S: envInt(1, 600).default(60).describe('Seconds a call rings before it ends as no_answer.'),
  CALL_CONNECT_TIMEOUT_S: envInt(1, 120).default(10).describe('Seconds after answer for direct media to connect before the call moves to the relay.'),
  CALL_RECONNECT_GRACE_S: envInt(1, 300).default(20).describe('Seconds a call survives a party\'s lost socket.'),
  CALL_MAX_DURATION_S: envInt(60, 7 * 86400).default(86400).describe('Longest a 1:1 call may last; it then ends (completed, by the system). Also bounds how long a crashed deployment can leave a user busy.'),
  CALL_FINAL_REPORT_S: envInt(0, 60).default(5).describe('Seconds after a call ends during which its parties may still send their final quality report; the call-ended fact (and so the call record) follows after it.'),
  STUN_URLS: envList.default('stun:stun.l.google.com:19302').describe('STUN servers handed to clients.'),
  TURN_URLS: envList.optional().describe('TURN servers (coturn) handed to clients with REST credentials.'),
  TURN_SECRET: z.string().min(16).optional().describe('coturn static-auth-secret for REST credentials.'),
  TURN_TTL_S: envInt(60, 86400).default(600).describe('Lifetime of TURN credentials in seconds.'),

  RELAY_SECRET: z.string().min(16).describe('Shared secret of the hub-to-relay control channel.'),
  RELAY_REQUEST_TIMEOUT_MS: envInt(100, 60000).default(5000).describe('Timeout of a request to a relay node.'),
  RELAY_MAX_LOAD: z.coerce.number().min(0.05).max(1).default(0.8).describe('Relay nodes reporting a higher load (0..1) get no new rooms while others are below it.'),
  RELAY_PLACEMENT_WINDOW_MS: envInt(100, 600_000).default(5000).describe('How long a room placed on a relay node counts toward that node\'s load before its next reports show it (against herding in bursts).'),
  RELAY_PLACEMENT_ROOM_COST: z.coerce.number().min(0).max(1).default(0.02).describe('Load (0..1) one recently placed room adds to a node\'s figure during the placement window.'),
  RELAY_ROOM_TTL_S: envInt(60, 30 * 86400).default(86400).describe('Lifetime of a room -> relay node mapping in Redis, refreshed whenever the room is opened (a safety net; rooms are unmapped when closed).'),
  RELAY_DIRECTORY_REFRESH_MS: envInt(100, 60_000).default(1000).describe('How often the hub reads the relay registry and connects to new nodes.'),
  RELAY_REQUIRED: envBool.default('true').describe('Whether /healthz fails while no relay node is serving (a hub without relays still carries direct calls; set false to keep it in rotation).'),
  CONFERENCE_MAX_PARTICIPANTS: envInt(2, 1000).default(16).describe('Largest conference.'),

  CDR_SHARDS: envInt(1, 64).default(4).describe('Number of CDR streams (cdr:{0}..cdr:{n-1}), one hash slot each.'),
  CDR_RETENTION_DAYS: envInt(1, 3650).default(180).describe('Call records older than this are trimmed.'),
  CDR_PSEUDONYM_KEYS_BILLING: envKeyRing.describe('Billing pseudonym keys (version:secret); the last is current, older ones stay for support lookups.'),
  CDR_PSEUDONYM_KEYS_ANALYTICS: envKeyRing.describe('Analytics pseudonym keys (version:secret); the last is current.'),
  CDR_SPOOL_DIR: z.string().default('var/cdr-spool').describe('Local append-only spool for records Redis could not take.'),
  CDR_WRITE_TIMEOUT_MS: envInt(10, 60000).default(1000).describe('Longest a call record write to Redis may take before the record goes to the local spool instead.'),
  CDR_SPOOL_REPLAY_MS: envInt(50, 600000).default(2000).describe('How often the hub retries writing spooled call records to Redis while the spool holds any.'),
  CDR_DEDUP_WINDOW_S: envInt(60, 90 * 86400).default(2 * 86400).describe('How long after a record\'s day its event id is remembered (by the writer and by each consumer group) so a replayed or redelivered record is not counted twice.'),
  CDR_TRIM_INTERVAL_S: envInt(1, 86400).default(3600).describe('How often each hub trims call record, dead-letter and audit streams to their retention (XTRIM MINID).'),
  CDR_AUDIT_RETENTION_DAYS: envInt(1, 3650).default(730).describe('Support-lookup audit entries older than this are trimmed.'),
  CDR_CLAIM_MIN_IDLE_MS: envInt(1, 86400000).default(60000).describe('CDR consumers take over (XAUTOCLAIM) records another consumer left unacknowledged for this long.'),
  CDR_MAX_DELIVERIES: envInt(1, 100).default(5).describe('Deliveries after which a CDR consumer moves a record that keeps failing to the cdr:dead stream.'),

  METRICS_ENABLED: envBool.default('true').describe('Expose Prometheus metrics at /metrics.'),
  ADMIN_TOKEN: z.string().min(16).optional().describe('Bearer token for operator endpoints (/admin, /metrics when set).'),
});

export type HubConfig = z.output<typeof hubEnvSchema>;

export function loadHubConfig(env: Record<string, string | undefined> = process.env): HubConfig {
  return parseEnv(hubEnvSchema, env);
}
