/** Relay node entry point: configuration, start, signal handling. Wiring only. */
import { ConfigError } from '../shared/env.js';
import { createLogger } from '../server/log.js';
import { loadRelayConfig } from './config.js';
import { RelayNode } from './RelayNode.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadRelayConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`relay: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger({ level: config.LOG_LEVEL, name: 'relay' });
  const node = await RelayNode.start(config, { log });
  // A line for humans and for scripts that wait for it.
  process.stdout.write(`RELAY_READY ${node.controlUrl}\n`);

  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    node.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`relay: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
