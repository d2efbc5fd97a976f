/**
 * Billing consumer: billable seconds per pseudonymous account and period.
 *   node --import tsx scripts/cdr-billing.ts [--once] [--period 2024-06-01|2024-06]... [--consumer NAME] [--every S] [--top N]
 * Needs REDIS_URL (and the CDR_* settings the hub uses); no secret.
 */
import { BILLING_GROUP, BillingAggregator } from '../server/cdr/BillingAggregator.js';
import { formatBillingSummary } from '../server/cdr/CdrReports.js';
import { runConsumerCommand } from '../server/cdr/consumerCommand.js';

const usage = 'usage: cdr-billing [--once] [--period YYYY-MM-DD|YYYY-MM]... [--consumer NAME] [--every SECONDS] [--top N]';

runConsumerCommand({
  group: BILLING_GROUP,
  usage,
  handler: (retentionMs) => new BillingAggregator(retentionMs).handle,
  summary: async (redis, period, top) => formatBillingSummary(await BillingAggregator.summary(redis, period), top),
}).then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`cdr-billing: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
