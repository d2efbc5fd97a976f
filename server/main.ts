/** Hub process entry point: wiring only. */
import { loadHubConfig } from './config.js';
import { Hub } from './Hub.js';
import { runProcess } from '../shared/runtime/processMain.js';

runProcess({
  name: 'hub',
  loadConfig: () => loadHubConfig(),
  start: async (config, log) => {
    const hub = await Hub.start(config, { log });
    // scripts/start.ts and the tests wait for this line.
    return { readyLine: `HUB_READY ${hub.url}`, close: () => hub.close() };
  },
});
