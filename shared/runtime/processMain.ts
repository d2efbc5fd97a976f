/**
 * The shape every service process shares (hub, relay): read configuration
 * (exit 78 naming the bad variable), start, print a readiness line that
 * scripts wait for, stop cleanly on SIGINT/SIGTERM, and log anything that
 * escaped every error boundary.
 */
import { ConfigError } from '../env.js';
import { createLogger, type Logger } from './log.js';

export interface ServiceProcess<C extends { LOG_LEVEL: string }> {
  name: string;
  loadConfig: () => C;
  /** Key for the pseudonyms that replace account and device ids in logs (see log.ts). */
  logPseudonymKey?: (config: C) => string;
  start: (config: C, log: Logger) => Promise<{ readyLine: string; close(): Promise<void> }>;
}

export function runProcess<C extends { LOG_LEVEL: string }>(spec: ServiceProcess<C>): void {
  const fatal = (err: unknown) => {
    process.stderr.write(`${spec.name}: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  };
  (async () => {
    let config: C;
    try {
      config = spec.loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${spec.name}: ${err.message}\n`);
        process.exit(78); // EX_CONFIG
      }
      throw err;
    }
    const pseudonymKey = spec.logPseudonymKey?.(config);
    const log = createLogger({ level: config.LOG_LEVEL, name: spec.name, ...(pseudonymKey ? { pseudonymKey } : {}) });
    // A throw outside every boundary may have left state half-changed: log it
    // and exit so the supervisor restarts a clean process. A stray rejected
    // promise is one failed operation: log it and keep serving.
    process.on('uncaughtException', (err) => {
      log.fatal({ err }, 'uncaught exception; exiting');
      process.exit(1);
    });
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

    const service = await spec.start(config, log);
    process.stdout.write(`${service.readyLine}\n`);

    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      service.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  })().catch(fatal);
}
