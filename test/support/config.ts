import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHubConfig, type HubConfig } from '../../server/config.js';

const secret = () => randomBytes(24).toString('hex');

// Every hub of this test process spools under one folder, removed at exit.
const spoolRoot = mkdtempSync(join(tmpdir(), 'callhub-spools-'));
process.once('exit', () => rmSync(spoolRoot, { recursive: true, force: true }));

/** Environment for a hub under test: fresh secrets, port 0, webhook settings as given. */
export function testHubEnv(redisUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HUB_HOST: '127.0.0.1',
    HUB_PORT: '0',
    REDIS_URL: redisUrl,
    JWT_KEYS: `k1:${secret()}`,
    JWT_SIGNING_KID: 'k1',
    IDENTITY_HMAC_KEYS: `i1:${secret()}`,
    RELAY_SECRET: secret(),
    // Most hub tests run without relay nodes; relay tests turn this back on.
    RELAY_REQUIRED: 'false',
    CDR_PSEUDONYM_KEYS_BILLING: `1:${secret()}`,
    CDR_PSEUDONYM_KEYS_ANALYTICS: `1:${secret()}`,
    CDR_SPOOL_DIR: join(spoolRoot, randomBytes(4).toString('hex')),
    ...overrides,
  };
}

export function testHubConfig(redisUrl: string, overrides: Record<string, string> = {}): HubConfig {
  return loadHubConfig(testHubEnv(redisUrl, overrides));
}
