import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError, envInt, parseEnv } from '../shared/env.js';

const Ip = z.string().ip();

/**
 * Every relay node setting, read from the environment once at startup. The
 * descriptions are the documentation.
 *
 * Production: run the node on a machine clients can reach, set
 * RELAY_RTC_LISTEN_IP=0.0.0.0 and RELAY_RTC_ANNOUNCED_IP to the public address
 * (or the address behind a 1:1 NAT), open RELAY_RTC_PORT_BASE ..
 * RELAY_RTC_PORT_BASE + RELAY_WORKERS - 1 for UDP and TCP, keep RELAY_PORT
 * reachable by the hubs only, and set RELAY_CONTROL_URL to the URL hubs use.
 */
export const relayEnvSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
  RELAY_ID: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).optional().describe('Name of this relay node in the registry, logs and metrics; random when unset.'),
  RELAY_HOST: z.string().default('0.0.0.0').describe('Address of the control + HTTP server (hubs, /metrics, /healthz).'),
  RELAY_PORT: envInt(0, 65535).default(4000).describe('Port of the control + HTTP server; 0 picks a free port.'),
  RELAY_CONTROL_URL: z.string().url().optional().describe('URL hubs use to reach this node\'s control server; default http://<RELAY_HOST, or 127.0.0.1 for a wildcard>:<port>.'),
  REDIS_URL: z.string().url().describe('Redis holding the relay registry.'),
  RELAY_SECRET: z.string().min(16).describe('Shared secret of the hub-to-relay control channel (same value on hubs).'),
  RELAY_WORKERS: envInt(1, 256).default(availableParallelism()).describe('mediasoup workers (one per core is right); default: number of cores.'),
  RELAY_RTC_LISTEN_IP: Ip.default('127.0.0.1').describe('IP the workers\' WebRtcServers listen on for client media; 0.0.0.0 in production.'),
  RELAY_RTC_ANNOUNCED_IP: Ip.optional().describe('Public IP announced in ICE candidates (required when listening on 0.0.0.0 or behind NAT).'),
  RELAY_RTC_PORT_BASE: envInt(0, 65535).default(44444).describe('Worker i takes UDP and TCP port base+i for client media; 0 picks free ports (development, tests).'),
  RELAY_PIPE_MIN_PORT: envInt(1024, 65535).default(20000).describe('Lowest loopback port for pipes between this node\'s workers (and for picked WebRtcServer ports).'),
  RELAY_PIPE_MAX_PORT: envInt(1024, 65535).default(29999).describe('Highest such port.'),
  RELAY_CONSUMERS_PER_WORKER: envInt(1, 100000).default(500).describe('Consumers one worker should carry; a room whose worker is full puts new participants on another worker (pipeToRouter). Also the capacity used in the load figure.'),
  RELAY_MAX_INCOMING_BITRATE: envInt(0, 100_000_000).default(1_500_000).describe('Cap on what one participant may send (bits/s); 0 disables.'),
  RELAY_TRANSPORT_CONNECT_TIMEOUT_MS: envInt(100, 600_000).default(30_000).describe('A transport that has not connected (DTLS) this long after creation, or stays ICE-disconnected this long, is closed.'),
  RELAY_ROOM_IDLE_TIMEOUT_MS: envInt(100, 86_400_000).default(300_000).describe('A room without peers this long is closed (a safety net for hubs that went away).'),
  LOAD_REPORT_INTERVAL_MS: envInt(50, 60_000).default(2000).describe('How often the node reports its load to Redis; it drops out of the registry after 2.5 intervals of silence.'),
  RELAY_ACTIVE_SPEAKER_INTERVAL_MS: envInt(100, 10_000).default(300).describe('ActiveSpeakerObserver interval.'),
});

export type RelayConfig = z.output<typeof relayEnvSchema>;

export function loadRelayConfig(env: Record<string, string | undefined> = process.env): RelayConfig {
  const config = parseEnv(relayEnvSchema, env);
  const problems: string[] = [];
  if (config.RELAY_PIPE_MIN_PORT > config.RELAY_PIPE_MAX_PORT) problems.push('RELAY_PIPE_MIN_PORT: must not exceed RELAY_PIPE_MAX_PORT');
  if ((config.RELAY_RTC_LISTEN_IP === '0.0.0.0' || config.RELAY_RTC_LISTEN_IP === '::') && !config.RELAY_RTC_ANNOUNCED_IP) {
    problems.push('RELAY_RTC_ANNOUNCED_IP: required when RELAY_RTC_LISTEN_IP is a wildcard address (clients cannot reach 0.0.0.0)');
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}
