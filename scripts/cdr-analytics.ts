/**
 * Analytics consumer: call counts, dispositions, setup time, media path share
 * and quality per period.
 *   node --import tsx scripts/cdr-analytics.ts [--once] [--period 2024-06-01|2024-06]... [--consumer NAME] [--every S]
 * Needs REDIS_URL (and the CDR_* settings the hub uses); no secret.
 */
import { ANALYTICS_GROUP, AnalyticsAggregator } from '../server/cdr/AnalyticsAggregator.js';
import { formatAnalyticsSummary } from '../server/cdr/CdrReports.js';
import { runConsumerCommand } from '../server/cdr/consumerCommand.js';

const usage = 'usage: cdr-analytics [--once] [--period YYYY-MM-DD|YYYY-MM]... [--consumer NAME] [--every SECONDS]';

runConsumerCommand({
  group: ANALYTICS_GROUP,
  usage,
  handler: (retentionMs) => new AnalyticsAggregator(retentionMs).handle,
  summary: async (redis, period) => formatAnalyticsSummary(await AnalyticsAggregator.summary(redis, period)),
}).then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`cdr-analytics: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
