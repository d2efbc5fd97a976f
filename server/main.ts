/** Hub process entry point: configuration, start, signal handling. Wiring only. */
import { ConfigError } from '../shared/env.js';
import { loadHubConfig } from './config.js';
import { Hub } from './Hub.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadHubConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hub: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger({ level: config.LOG_LEVEL, name: 'hub' });
  const hub = await Hub.start(config, { log });
  // A line for humans and for scripts/start.ts, which waits for it.
  process.stdout.write(`HUB_READY ${hub.url}\n`);

  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    hub.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`hub: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
