import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const live = new Set<ChildProcess>();

// Whatever happens to a test run, no child outlives it.
for (const sig of ['exit', 'SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const child of live) child.kill('SIGKILL');
    if (sig !== 'exit') process.exit(1);
  });
}

/** Spawns a child that is killed when the test process exits, however it exits. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Runs a script under tsx in a tracked child; resolves with its exit code and output. */
export function runScript(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** Resolves with the first stdout line matching `pattern`; rejects if the child exits first or on timeout. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    let stderr = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const m = buffer.match(pattern);
      if (m) done(undefined, m);
    };
    const onErr = (chunk: Buffer) => { stderr += chunk.toString(); };
    const onExit = (code: number | null) => done(new Error(`process exited (${code}) before ${pattern}; stderr: ${stderr.slice(-2000)}`));
    function done(err?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
