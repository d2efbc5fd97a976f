import { z } from 'zod';
import { parseEnv } from '../../shared/env.js';
import { hubEnvSchema } from '../config.js';

/**
 * Settings of the CDR commands in scripts/, taken from the hub's schema so
 * every variable means the same everywhere. The consumers need no secret at
 * all: they only ever see pseudonyms. Only the support lookup holds the
 * pseudonym keys and the phone-index key.
 */
const scriptLogLevel = { LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn').describe('pino log level of the command.') };

export const cdrConsumerEnvSchema = hubEnvSchema
  .pick({ REDIS_URL: true, CDR_SHARDS: true, CDR_RETENTION_DAYS: true, CDR_DEDUP_WINDOW_S: true, CDR_CLAIM_MIN_IDLE_MS: true, CDR_MAX_DELIVERIES: true })
  .extend(scriptLogLevel);

export const cdrLookupEnvSchema = hubEnvSchema
  .pick({ REDIS_URL: true, CDR_SHARDS: true, CDR_PSEUDONYM_KEYS_BILLING: true, CDR_PSEUDONYM_KEYS_ANALYTICS: true, IDENTITY_HMAC_KEYS: true })
  .extend(scriptLogLevel);

export type CdrConsumerConfig = z.output<typeof cdrConsumerEnvSchema>;
export type CdrLookupConfig = z.output<typeof cdrLookupEnvSchema>;

export function loadCdrConsumerConfig(env: Record<string, string | undefined> = process.env): CdrConsumerConfig {
  return parseEnv(cdrConsumerEnvSchema, env);
}

export function loadCdrLookupConfig(env: Record<string, string | undefined> = process.env): CdrLookupConfig {
  return parseEnv(cdrLookupEnvSchema, env);
}
