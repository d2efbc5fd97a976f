#!/usr/bin/env node
// Run mediasoup's own compiled Node test suite against the worker we build
// (npm run test:mediasoup).
//
// The suite ships inside the npm package (node/lib/tests/test-*.js), which
// exercises the worker far more thoroughly than our own tests do. Two things
// stop running it in place: jest never collects tests under node_modules, and
// the package omits the DTLS fixtures the tests load. So we copy the package's
// JS into a temp dir, generate the fixtures there, and point jest at it.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mediasoupDir = join(root, 'node_modules', 'mediasoup');
const workerBin = join(mediasoupDir, 'worker', 'out', 'Release', 'mediasoup-worker');
const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js');

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

if (!existsSync(join(mediasoupDir, 'package.json'))) {
  console.error('mediasoup-suite: node_modules/mediasoup is missing: run npm ci first');
  process.exit(1);
}

// Make sure the installed worker matches the current patches; on a cache hit
// this is a sub-second copy.
if (run('bash', [join(root, 'scripts', 'build-worker.sh')]) !== 0) {
  console.error('mediasoup-suite: scripts/build-worker.sh failed');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'callhub-mediasoup-suite-'));
let exitCode = 1;

function cleanup() {
  rmSync(work, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

try {
  // Keep the package layout (<pkg>/node/lib) so the tests' relative requires
  // ("../", "../errors") and mediasoup's own path logic behave as upstream.
  cpSync(join(mediasoupDir, 'package.json'), join(work, 'package.json'));
  cpSync(join(mediasoupDir, 'node', 'lib'), join(work, 'node', 'lib'), { recursive: true });

  // mediasoup's nested node_modules (if npm nested anything) comes first in
  // resolution, as it would inside the package; everything else (debug, uuid,
  // pick-port, sctp, ...) resolves from the project's node_modules through
  // jest's modulePaths.
  const nested = join(mediasoupDir, 'node_modules');
  if (existsSync(nested)) symlinkSync(nested, join(work, 'node_modules'), 'dir');

  // The npm package leaves out tests/data; the WebRtcServer/DTLS tests only
  // need some valid certificate and key. P-256 keeps generation instant.
  const dataDir = join(work, 'node', 'lib', 'tests', 'data');
  mkdirSync(dataDir, { recursive: true });
  const opensslStatus = run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dataDir, 'dtls-key.pem'), '-out', join(dataDir, 'dtls-cert.pem'),
    '-days', '1', '-subj', '/CN=callhub-mediasoup-suite',
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (opensslStatus !== 0) throw new Error('openssl could not generate the DTLS fixtures');

  const config = {
    rootDir: work,
    testEnvironment: 'node',
    testRegex: 'node/lib/tests/test-.*\\.js$',
    // Plain CommonJS already; skipping babel-jest saves time.
    transform: {},
    modulePaths: [join(root, 'node_modules')],
    cacheDirectory: join(work, '.jest-cache'),
    verbose: true,
  };
  const configFile = join(work, 'jest.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const resultsFile = join(work, 'results.json');

  const started = Date.now();
  exitCode = run(process.execPath, [
    jestBin, '--config', configFile, '--runInBand', '--json', '--outputFile', resultsFile,
  ], {
    cwd: work,
    // Test the binary build-worker.sh installed, whatever the caller's
    // environment says; the suite's own workerBin test reads this variable.
    env: { ...process.env, MEDIASOUP_WORKER_BIN: workerBin },
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  if (existsSync(resultsFile)) {
    const r = JSON.parse(readFileSync(resultsFile, 'utf8'));
    console.log(
      `mediasoup-suite: ${r.numPassedTests}/${r.numTotalTests} tests passed ` +
      `(${r.numFailedTests} failed, ${r.numPendingTests} skipped) in ` +
      `${r.numTotalTestSuites} suites, ${seconds} s, worker ${workerBin}`,
    );
  } else {
    console.log(`mediasoup-suite: jest exited with ${exitCode} after ${seconds} s without results`);
  }
} catch (err) {
  console.error(`mediasoup-suite: ${err.message}`);
  exitCode = 1;
} finally {
  cleanup();
}

process.exit(exitCode);
