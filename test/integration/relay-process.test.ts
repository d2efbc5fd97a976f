import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import type { Hub } from '../../server/Hub.js';
import type { RelayServices } from '../../server/relay/registerRelay.js';
import { AppError } from '../../shared/protocol/errors.js';
import { relayRegistryKeys } from '../../shared/protocol/relayControl.js';
import { TestRedis } from '../support/redis.js';
import { startTestHub } from '../support/hub.js';
import { freePort } from '../support/ports.js';
import { spawnTracked, stopProcess, waitForLine } from '../support/processes.js';
import { TEST_RELAY_SECRET, eventually, testRelayEnv } from '../support/relay.js';

/**
 * The relay as operators run it: `relay/main.ts` in its own process. Covers
 * the ready line, clean shutdown on SIGTERM, a node that stops reporting
 * (frozen, then killed) dropping out of the registry, request timeouts and
 * reconnection of the hub's control link.
 */
describe('relay node process', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let hub: Hub;
  let relay: RelayServices;
  let port: number;
  let child: ChildProcess | undefined;

  const spawnRelay = async (): Promise<{ proc: ChildProcess; url: string }> => {
    const proc = spawnTracked(process.execPath, ['--import', 'tsx', 'relay/main.ts'], {
      env: { ...process.env, ...testRelayEnv(redis.url, { RELAY_ID: 'node-p', RELAY_PORT: String(port), LOAD_REPORT_INTERVAL_MS: '200' }) },
    });
    const [, url] = await waitForLine(proc, /RELAY_READY (\S+)/, 30_000);
    return { proc, url: url! };
  };
  const dumpError = async (): Promise<string> => {
    try {
      await relay.service.dump('node-p');
      return 'ok';
    } catch (err) {
      return err instanceof AppError ? err.code : String(err);
    }
  };

  before(async () => {
    redis = await TestRedis.start();
    port = await freePort();
    hub = await startTestHub(redis.url, { RELAY_SECRET: TEST_RELAY_SECRET, RELAY_DIRECTORY_REFRESH_MS: '100', RELAY_REQUEST_TIMEOUT_MS: '1500' });
    relay = hub.ctx.relay!;
  });
  after(async () => {
    if (child) {
      child.kill('SIGCONT');
      await stopProcess(child);
    }
    await hub?.close();
    await redis?.stop();
  });

  it('prints RELAY_READY with its control URL, registers, and answers the hub', async () => {
    const started = await spawnRelay();
    child = started.proc;
    expect(started.url).to.equal(`http://127.0.0.1:${port}`);
    const report = await eventually(() => relay.service.directory.node('node-p'), 'node-p in the registry');
    expect(report.controlUrl).to.equal(started.url);
    expect((await relay.service.dump('node-p')).nodeId).to.equal('node-p');
  });

  it('times out requests to a frozen node, which drops out of the registry, and recovers when it thaws', async () => {
    child!.kill('SIGSTOP');
    expect(await dumpError()).to.equal('TIMEOUT');
    await eventually(async () => (await relay.service.directory.node('node-p')) === undefined, 'the silent node to drop out', 10_000);
    expect((await relay.service.nodes()).map((n) => n.nodeId)).to.not.include('node-p');
    child!.kill('SIGCONT');
    await eventually(() => relay.service.directory.node('node-p'), 'the node to report again');
    await eventually(async () => (await dumpError()) === 'ok', 'requests to work again');
  });

  it('leaves the registry at once and exits cleanly on SIGTERM; the hub reconnects when it is back', async () => {
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    expect(await exited).to.equal(0);
    const client = redis.client();
    try {
      expect(await client.exists(relayRegistryKeys.node('node-p'))).to.equal(0);
      expect(await client.zscore(relayRegistryKeys.nodes, 'node-p')).to.equal(null);
    } finally {
      client.disconnect();
    }
    expect(['RELAY_UNAVAILABLE', 'TIMEOUT']).to.include(await dumpError());

    // Same address again: the existing link reconnects by itself.
    child = (await spawnRelay()).proc;
    await eventually(async () => (await dumpError()) === 'ok', 'the link to reconnect');
  });

  it('drops a killed node out of the registry within a few report intervals', async () => {
    child!.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = undefined;
    await eventually(async () => (await relay.service.directory.node('node-p')) === undefined, 'the killed node to drop out', 10_000);
    const err = await relay.service.openRoom('after-kill').catch((e: unknown) => e);
    expect((err as AppError).code).to.equal('RELAY_UNAVAILABLE');
  });
});
