import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ConfigError } from '../../shared/env.js';
import { createLogger } from '../../shared/runtime/log.js';
import { CdrConsumer, type CdrHandler } from './CdrConsumer.js';
import { formatConsumerStats } from './CdrReports.js';
import { parsePeriod, utcDay, utcMonth } from './periods.js';
import { loadCdrConsumerConfig } from './toolConfig.js';

type Period = NonNullable<ReturnType<typeof parsePeriod>>;

export interface ConsumerCommand {
  /** Consumer group and command name. */
  group: string;
  usage: string;
  handler(retentionMs: number): CdrHandler;
  /** Reads and renders the summary of one period. */
  summary(redis: Redis, period: Period, top: number): Promise<string>;
}

const out = (text: string) => process.stdout.write(`${text}\n`);

/**
 * The body of scripts/cdr-billing.ts and scripts/cdr-analytics.ts: runs the
 * group's consumer over every shard (continuously, or with --once until
 * nothing is left) and prints readable summaries.
 * Options: --once, --period YYYY-MM-DD|YYYY-MM (repeatable; default today and
 * this month, UTC), --consumer NAME (default host-pid), --every SECONDS
 * (continuous mode's summary interval), --top N (billing rows).
 */
export async function runConsumerCommand(cmd: ConsumerCommand, argv = process.argv.slice(2)): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        once: { type: 'boolean', default: false },
        period: { type: 'string', multiple: true },
        consumer: { type: 'string' },
        every: { type: 'string', default: '30' },
        top: { type: 'string', default: '20' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${cmd.usage}\n`);
    return 64;
  }
  if (args.help) {
    out(cmd.usage);
    return 0;
  }
  const periods: Period[] = [];
  for (const p of args.period ?? []) {
    const parsed = parsePeriod(p);
    if (!parsed) {
      process.stderr.write(`bad --period ${p}: expected YYYY-MM-DD or YYYY-MM\n`);
      return 64;
    }
    periods.push(parsed);
  }
  const every = Number(args.every);
  const top = Number(args.top);
  if (!(every > 0) || !(top > 0)) {
    process.stderr.write(`--every and --top must be positive numbers\n${cmd.usage}\n`);
    return 64;
  }
  let config;
  try {
    config = loadCdrConsumerConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${cmd.group}: ${err.message}\n`);
      return 78;
    }
    throw err;
  }

  const log = createLogger({ level: config.LOG_LEVEL, name: `cdr-${cmd.group}` });
  const consumerName = args.consumer ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40)}-${process.pid}`;
  const redis = new Redis(config.REDIS_URL, { connectionName: `cdr-${cmd.group}`, maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined); // the consumer logs failed rounds itself
  const retentionMs = config.CDR_RETENTION_DAYS * 86_400_000;
  const consumer = new CdrConsumer({
    redis,
    group: cmd.group,
    consumer: consumerName,
    shards: config.CDR_SHARDS,
    handler: cmd.handler(retentionMs),
    log,
    minIdleMs: config.CDR_CLAIM_MIN_IDLE_MS,
    maxDeliveries: config.CDR_MAX_DELIVERIES,
    dedupWindowMs: config.CDR_DEDUP_WINDOW_S * 1000,
  });
  const report = async () => {
    const now = Date.now();
    const list = periods.length ? periods : [parsePeriod(utcDay(now))!, parsePeriod(utcMonth(now))!];
    for (const p of list) out(await cmd.summary(redis, p, top));
  };

  try {
    if (args.once) {
      const stats = await consumer.runOnce();
      out(formatConsumerStats(cmd.group, consumerName, stats));
      await report();
      return 0;
    }
    consumer.start();
    out(`${cmd.group} consumer ${consumerName} running over ${config.CDR_SHARDS} shards; Ctrl-C to stop`);
    let last = '';
    const timer = setInterval(() => {
      const line = formatConsumerStats(cmd.group, consumerName, consumer.stats);
      if (line === last) return;
      last = line;
      out(line);
      report().catch((err: Error) => log.warn({ err: err.message }, 'summary failed'));
    }, every * 1000);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    clearInterval(timer);
    await consumer.close();
    out(formatConsumerStats(cmd.group, consumerName, consumer.stats));
    await report();
    return 0;
  } finally {
    await consumer.close();
    redis.disconnect();
  }
}
