/**
 * Support lookup: lists one user's call records for a dispute, and leaves an
 * audit entry (operator, reason, time, how many records; never the number).
 *   node --import tsx scripts/cdr-lookup.ts --phone +447700900123 --operator alice --reason "dispute #123" [--json]
 * Needs REDIS_URL, CDR_SHARDS, CDR_PSEUDONYM_KEYS_BILLING, CDR_PSEUDONYM_KEYS_ANALYTICS
 * (every version still in retention) and IDENTITY_HMAC_KEYS (to find the account).
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ConfigError } from '../shared/env.js';
import { Accounts } from '../server/identity/Accounts.js';
import { PhoneHasher } from '../server/identity/PhoneHasher.js';
import { Pseudonymizer } from '../server/cdr/Pseudonymizer.js';
import { SupportLookup } from '../server/cdr/SupportLookup.js';
import { formatLookup } from '../server/cdr/CdrReports.js';
import { loadCdrLookupConfig } from '../server/cdr/toolConfig.js';

const usage = 'usage: cdr-lookup --phone +E164 --operator LOGIN --reason "TICKET / WHY" [--json]';

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        phone: { type: 'string' },
        operator: { type: 'string' },
        reason: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    return 64;
  }
  if (!args.phone || !args.operator || !args.reason) {
    process.stderr.write(`--phone, --operator and --reason are required\n${usage}\n`);
    return 64;
  }
  let config;
  try {
    config = loadCdrLookupConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cdr-lookup: ${err.message}\n`);
      return 78;
    }
    throw err;
  }
  const redis = new Redis(config.REDIS_URL, { connectionName: 'cdr-lookup', maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined); // commands report their own failure
  try {
    const lookup = new SupportLookup({
      redis,
      accounts: new Accounts(redis, new PhoneHasher(config.IDENTITY_HMAC_KEYS)),
      pseudonymizer: new Pseudonymizer({ billing: config.CDR_PSEUDONYM_KEYS_BILLING, analytics: config.CDR_PSEUDONYM_KEYS_ANALYTICS }),
      shards: config.CDR_SHARDS,
    });
    let result;
    try {
      result = await lookup.lookup({ phone: args.phone, operator: args.operator, reason: args.reason });
    } catch (err) {
      if (err instanceof TypeError) {
        process.stderr.write(`cdr-lookup: ${err.message}\n`);
        return 64;
      }
      throw err;
    }
    process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatLookup(args.operator, result)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`cdr-lookup: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
