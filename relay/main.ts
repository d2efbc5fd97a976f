/** Relay node entry point: wiring only. */
import { runProcess } from '../shared/runtime/processMain.js';
import { loadRelayConfig } from './config.js';
import { RelayNode } from './RelayNode.js';

runProcess({
  name: 'relay',
  loadConfig: () => loadRelayConfig(),
  start: async (config, log) => {
    const node = await RelayNode.start(config, { log });
    return { readyLine: `RELAY_READY ${node.controlUrl}`, close: () => node.close() };
  },
});
