import type { HubContext } from '../HubContext.js';
import type { CallEndedFact } from '../calls/CallEndedFact.js';
import { CdrWriter } from './CdrWriter.js';
import { Pseudonymizer } from './Pseudonymizer.js';
import { CdrRefusedError } from './recordFromFact.js';
import { RetentionTrimmer } from './RetentionTrimmer.js';
import { Spool } from './Spool.js';

const DAY_MS = 86_400_000;

/** The hub's call-record subsystem: what registerCdr started and closes. */
export interface CdrService {
  readonly writer: CdrWriter;
  readonly spool: Spool;
  readonly trimmer: RetentionTrimmer;
  readonly pseudonymizer: Pseudonymizer;
  /** Waits until every record of a fact emitted so far is in Redis or in the spool. */
  flush(): Promise<void>;
}

// Keyed by context rather than a ctx field: nothing else in the hub needs the
// CDR internals; tests and operator tooling reach them through cdrOf().
const services = new WeakMap<HubContext, CdrService>();

export function cdrOf(ctx: HubContext): CdrService {
  const service = services.get(ctx);
  if (!service) throw new Error('registerCdr() was not called for this hub');
  return service;
}

/**
 * Records every call: subscribes to 'call:ended', writes each fact as a
 * pseudonymous record (spooling locally when Redis cannot take it), replays
 * the spool on a timer, trims streams to retention. On close it stops
 * listening, flushes pending writes and releases the spool. Register it
 * before the call and conference subsystems so it closes after them and
 * records the calls they end on shutdown.
 */
export async function registerCdr(ctx: HubContext): Promise<CdrService> {
  const { config } = ctx;
  const log = ctx.log.child({ sub: 'cdr' });
  const pseudonymizer = new Pseudonymizer({ billing: config.CDR_PSEUDONYM_KEYS_BILLING, analytics: config.CDR_PSEUDONYM_KEYS_ANALYTICS });
  const spool = await Spool.open(config.CDR_SPOOL_DIR, log);
  const writer = new CdrWriter({
    redisUrl: config.REDIS_URL,
    pseudonymizer,
    spool,
    log,
    shards: config.CDR_SHARDS,
    retentionMs: config.CDR_RETENTION_DAYS * DAY_MS,
    dedupWindowMs: config.CDR_DEDUP_WINDOW_S * 1000,
    timeoutMs: config.CDR_WRITE_TIMEOUT_MS,
    strict: config.NODE_ENV !== 'production',
    connectionName: `${ctx.hubId}-cdr`,
  });
  await writer.ready(Math.max(config.CDR_WRITE_TIMEOUT_MS, 2000));

  const onCallEnded = (fact: CallEndedFact) => {
    // Never throws into the emitter: the call is over whatever happens here.
    writer.write(fact).catch((err: Error) => {
      // A refused record is logged by the writer already.
      if (!(err instanceof CdrRefusedError)) log.error({ err: err.message, callId: fact.callId }, 'cdr: record not stored');
    });
  };
  ctx.events.on('call:ended', onCallEnded);

  const replayTimer = setInterval(() => {
    if (spool.pending > 0) void writer.replay();
  }, config.CDR_SPOOL_REPLAY_MS);
  replayTimer.unref();
  if (spool.pending > 0) void writer.replay();

  const trimmer = new RetentionTrimmer(ctx.redis, {
    shards: config.CDR_SHARDS,
    retentionMs: config.CDR_RETENTION_DAYS * DAY_MS,
    auditRetentionMs: config.CDR_AUDIT_RETENTION_DAYS * DAY_MS,
    log,
  });
  trimmer.start(config.CDR_TRIM_INTERVAL_S * 1000);

  ctx.healthChecks.set('cdr', async () => {
    const waiting = writer.spooled;
    return waiting ? `${waiting} records spooled, waiting for Redis` : undefined;
  });

  const service: CdrService = { writer, spool, trimmer, pseudonymizer, flush: () => writer.flush() };
  services.set(ctx, service);

  ctx.onClose(async () => {
    ctx.events.off('call:ended', onCallEnded);
    clearInterval(replayTimer);
    await trimmer.close();
    await writer.close();
    await spool.close();
    log.info({ ...writer.stats, spoolLeft: spool.pending }, 'cdr closed');
  });
  return service;
}
