/** Hub process entry point: wiring only. */
import { createHmac } from 'node:crypto';
import { loadHubConfig } from './config.js';
import { Hub } from './Hub.js';
import { runProcess } from '../shared/runtime/processMain.js';

runProcess({
  name: 'hub',
  loadConfig: () => loadHubConfig(),
  // Derived from the identity key, so every hub of a deployment writes the same pseudonym for a user.
  logPseudonymKey: (config) => createHmac('sha256', [...config.IDENTITY_HMAC_KEYS.values()][0]!).update('log-pseudonyms/v1').digest('hex'),
  start: async (config, log) => {
    const hub = await Hub.start(config, { log });
    // scripts/start.ts and the tests wait for this line.
    return { readyLine: `HUB_READY ${hub.url}`, close: () => hub.close() };
  },
});
