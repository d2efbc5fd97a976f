import { installDebugHook } from './debug.js';
import { Softphone } from './Softphone.js';

const root = document.getElementById('app');
if (root) {
  const params = new URLSearchParams(location.search);
  const app = new Softphone(root, { blockDirectMedia: params.get('test-block-direct') === '1' });
  installDebugHook(app);
  void app.start();
}
