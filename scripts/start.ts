/**
 * `npm start`: the whole system on one machine with embedded defaults.
 * - a private redis-server (data in var/redis, append-only file on) unless
 *   REDIS_URL is set;
 * - secrets generated once into var/secrets.env (mode 600) unless set;
 * - one relay node, then one hub; prints the hub URL.
 * Ctrl-C stops them in order: hub (drains sockets, flushes call records),
 * relay (closes workers), then Redis (fsyncs the AOF).
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const varDir = resolve(root, 'var');
mkdirSync(varDir, { recursive: true });

const say = (msg: string) => process.stdout.write(`[start] ${msg}\n`);

function loadSecrets(): Record<string, string> {
  const file = resolve(varDir, 'secrets.env');
  if (!existsSync(file)) {
    const s = () => randomBytes(32).toString('base64url');
    const lines = [
      '# Generated once by `npm start` for this machine. Keep private; production sets these in its own environment.',
      `JWT_KEYS=k1:${s()}`,
      'JWT_SIGNING_KID=k1',
      `IDENTITY_HMAC_KEYS=i1:${s()}`,
      `RELAY_SECRET=${s()}`,
      `CDR_PSEUDONYM_KEYS_BILLING=1:${s()}`,
      `CDR_PSEUDONYM_KEYS_ANALYTICS=1:${s()}`,
      `ADMIN_TOKEN=${s()}`,
    ];
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    say('generated var/secrets.env');
  }
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

const children: { name: string; child: ChildProcess }[] = [];

function launch(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, echo = true): Promise<string> {
  // Own process group: Ctrl-C reaches only this script, which stops children in order.
  const child = spawn(cmd, args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push({ name, child });
  return new Promise((res, rej) => {
    let buf = '';
    let tail = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (echo) process.stdout.write(chunk);
      else tail = (tail + chunk.toString()).slice(-4000);
      buf += chunk.toString();
      const m = buf.match(ready);
      if (m) {
        buf = '';
        res(m[1] ?? '');
      }
    });
    child.once('exit', (code, sig) => {
      rej(new Error(`${name} exited (${code ?? sig}) before it was ready${tail ? `:\n${tail}` : ''}`));
      if (!stopping) {
        say(`${name} exited (${code ?? sig}); stopping everything`);
        void stopAll(1);
      }
    });
  });
}

let stopping = false;
async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const { name, child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    say(`stopping ${name}`);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }
  say('stopped');
  process.exit(code);
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...loadSecrets(), ...process.env };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  if (!env.REDIS_URL) {
    let port = Number(env.CALLHUB_REDIS_PORT ?? 6390);
    if (!(await portFree(port))) {
      const { freePort } = await import('../test/support/ports.js');
      port = await freePort();
    }
    const dir = resolve(varDir, 'redis');
    mkdirSync(dir, { recursive: true });
    await launch('redis', 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--loglevel', 'notice',
    ], env, /Ready to accept connections/, false);
    env.REDIS_URL = `redis://127.0.0.1:${port}`;
    say(`embedded Redis on ${env.REDIS_URL} (data in var/redis)`);
  }

  const tsx = ['--import', 'tsx'];
  const relayUrl = await launch('relay', process.execPath, [...tsx, 'relay/main.ts'], env, /RELAY_READY (\S+)/);
  const hubUrl = await launch('hub', process.execPath, [...tsx, 'server/main.ts'], env, /HUB_READY (\S+)/);
  writeFileSync(resolve(varDir, 'runtime.json'), JSON.stringify({ redisUrl: env.REDIS_URL, relayUrl, hubUrl }, null, 2));
  say(`hub ready at ${hubUrl}  (health: ${hubUrl}/healthz, softphone: ${hubUrl}/)`);
  say('press Ctrl-C to stop');
}

main().catch((err: unknown) => {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  void stopAll(1);
});
