import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { spawnTracked, stopProcess, waitForLine } from './processes.js';

/**
 * A private redis-server on a free port, with its own data folder, for one
 * test file or suite. Tests never touch a Redis someone else uses.
 */
export class TestRedis {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private child: ChildProcess,
    private readonly appendOnly: boolean,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(opts: { appendOnly?: boolean } = {}): Promise<TestRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'callhub-redis-'));
    const port = await freePort();
    const child = await TestRedis.#spawn(port, dir, opts.appendOnly ?? false);
    return new TestRedis(port, dir, child, opts.appendOnly ?? false);
  }

  static async #spawn(port: number, dir: string, appendOnly: boolean): Promise<ChildProcess> {
    const child = spawnTracked('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', appendOnly ? 'yes' : 'no', '--loglevel', 'warning',
    ]);
    const client = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return child;
      } catch {
        client.disconnect();
        if (child.exitCode !== null) throw new Error('redis-server exited at startup');
        if (Date.now() > deadline) throw new Error('redis-server did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** A fresh client to inspect the store (caller disconnects it). */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }

  /** Stops the server, keeping its data folder (for stop/start durability tests). */
  async pause(): Promise<void> {
    await stopProcess(this.child);
  }

  /** Starts it again on the same port and folder. */
  async resume(): Promise<void> {
    this.child = await TestRedis.#spawn(this.port, this.dir, this.appendOnly);
  }

  async stop(): Promise<void> {
    await stopProcess(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export { waitForLine };
