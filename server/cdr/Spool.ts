import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CdrRecord } from '../../shared/cdr.js';
import type { Logger } from '../../shared/runtime/log.js';

export interface SpoolBatch {
  records: CdrRecord[];
  /** Byte offset just past the batch's last line. */
  end: number;
  /** Lines the batch covers (records plus any unreadable line skipped). */
  lines: number;
}

/** Another process (or another Spool in this one) already uses the folder. */
export class SpoolLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(`CDR spool ${dir} is in use by process ${pid}`);
    this.name = 'SpoolLockedError';
  }
}

interface QueuedAppend {
  line: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const openDirs = new Set<string>();

/**
 * A local, append-only file of call records that Redis could not take yet.
 * One JSON record per line; an append resolves only after the line is
 * fsynced (appends arriving together share one fsync). Records are read back
 * in order from an acknowledged-offset cursor, which moves only after Redis
 * confirmed them; when everything is acknowledged the file is truncated.
 * A crash can at worst replay records Redis already has, which the writer's
 * idempotency marker absorbs; it never loses one that was appended.
 *
 * Files in the folder: `cdr.spool` (records), `cdr.spool.ack` (cursor),
 * `cdr.spool.lock` (pid of the owner; one process per folder).
 */
export class Spool {
  readonly #dir: string;
  readonly #fh: FileHandle;
  readonly #log: Logger;
  #size: number;
  #cursor: number;
  #pending: number;
  #queue: QueuedAppend[] = [];
  #flushScheduled = false;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, fh: FileHandle, log: Logger, size: number, cursor: number, pending: number) {
    this.#dir = dir;
    this.#fh = fh;
    this.#log = log;
    this.#size = size;
    this.#cursor = cursor;
    this.#pending = pending;
  }

  static async open(dir: string, log: Logger): Promise<Spool> {
    const abs = resolve(dir);
    await mkdir(abs, { recursive: true, mode: 0o700 });
    await Spool.#lock(abs);
    try {
      const fh = await open(resolve(abs, 'cdr.spool'), 'a+', 0o600);
      let size = (await fh.stat()).size;
      size = await Spool.#dropTornTail(fh, size, log);
      let cursor = await Spool.#readCursor(abs);
      if (cursor > size) cursor = 0; // truncated before the cursor was reset
      const spool = new Spool(abs, fh, log, size, cursor, 0);
      spool.#pending = await spool.#countLines(cursor, size);
      if (spool.#pending > 0) log.info({ pending: spool.#pending }, 'cdr spool has records to replay');
      return spool;
    } catch (err) {
      openDirs.delete(abs);
      await rm(resolve(abs, 'cdr.spool.lock'), { force: true });
      throw err;
    }
  }

  /** Records appended and not yet acknowledged. */
  get pending(): number {
    return this.#pending;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Appends one record; resolves once it is on disk (fsynced). */
  append(record: CdrRecord): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('spool is closed'));
    return new Promise((resolvePromise, reject) => {
      this.#queue.push({ line: JSON.stringify(record) + '\n', resolve: resolvePromise, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        void this.#serial(() => this.#flush());
      }
    });
  }

  /** Up to `max` of the oldest unacknowledged records, in append order. */
  peek(max: number): Promise<SpoolBatch> {
    return this.#serial(async () => {
      const records: CdrRecord[] = [];
      let lines = 0;
      let end = this.#cursor;
      let readAt = this.#cursor;
      let carry = Buffer.alloc(0);
      const chunk = Buffer.alloc(256 * 1024);
      while (records.length < max && readAt < this.#size) {
        const { bytesRead } = await this.#fh.read(chunk, 0, Math.min(chunk.length, this.#size - readAt), readAt);
        if (bytesRead === 0) break;
        readAt += bytesRead;
        const buf = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
        let start = 0;
        while (records.length < max) {
          const nl = buf.indexOf(0x0a, start);
          if (nl < 0) break;
          const line = buf.toString('utf8', start, nl);
          end += nl + 1 - start;
          start = nl + 1;
          lines++;
          try {
            records.push(JSON.parse(line) as CdrRecord);
          } catch {
            this.#log.error({ offset: end }, 'unreadable cdr spool line skipped');
          }
        }
        carry = buf.subarray(start);
      }
      return { records, end, lines };
    });
  }

  /**
   * Marks a batch from peek() as taken by Redis: the cursor moves past it.
   * Truncates the file once nothing is left.
   */
  ack(batch: SpoolBatch): Promise<void> {
    return this.#serial(async () => {
      if (batch.end <= this.#cursor) return;
      this.#cursor = Math.min(batch.end, this.#size);
      this.#pending = Math.max(0, this.#pending - batch.lines);
      if (this.#cursor >= this.#size) {
        await this.#fh.truncate(0);
        await this.#fh.datasync();
        this.#size = 0;
        this.#cursor = 0;
        this.#pending = 0;
      }
      await this.#writeCursor();
    });
  }

  /** Waits for queued appends, then releases the file and the folder lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#serial(async () => undefined);
    await this.#fh.close().catch(() => undefined);
    await rm(resolve(this.#dir, 'cdr.spool.lock'), { force: true });
    openDirs.delete(this.#dir);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    try {
      const data = Buffer.from(batch.map((b) => b.line).join(''));
      await this.#fh.write(data, 0, data.length, null);
      await this.#fh.datasync();
      this.#size += data.length;
      this.#pending += batch.length;
      for (const b of batch) b.resolve();
    } catch (err) {
      // A partial write would leave a torn line; cut the file back to where it was.
      await this.#fh.truncate(this.#size).catch(() => undefined);
      for (const b of batch) b.reject(err);
    }
  }

  async #writeCursor(): Promise<void> {
    const file = resolve(this.#dir, 'cdr.spool.ack');
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${this.#cursor}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }

  async #countLines(from: number, to: number): Promise<number> {
    let count = 0;
    const chunk = Buffer.alloc(256 * 1024);
    for (let offset = from; offset < to;) {
      const { bytesRead } = await this.#fh.read(chunk, 0, Math.min(chunk.length, to - offset), offset);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) if (chunk[i] === 0x0a) count++;
      offset += bytesRead;
    }
    return count;
  }

  static async #readCursor(dir: string): Promise<number> {
    try {
      const n = Number((await readFile(resolve(dir, 'cdr.spool.ack'), 'utf8')).trim());
      return Number.isSafeInteger(n) && n >= 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  /** A crash mid-append leaves a line without its newline: it was never confirmed, so it goes. */
  static async #dropTornTail(fh: FileHandle, size: number, log: Logger): Promise<number> {
    if (size === 0) return 0;
    const window = Buffer.alloc(Math.min(size, 64 * 1024));
    let end = size;
    for (;;) {
      const start = Math.max(0, end - window.length);
      const { bytesRead } = await fh.read(window, 0, end - start, start);
      if (end === size && window[bytesRead - 1] === 0x0a) return size;
      const nl = window.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl >= 0 || start === 0) {
        const keep = nl >= 0 ? start + nl + 1 : 0;
        await fh.truncate(keep);
        await fh.datasync();
        log.warn({ dropped: size - keep }, 'cdr spool: dropped an incomplete last line');
        return keep;
      }
      end = start;
    }
  }

  static async #lock(dir: string): Promise<void> {
    const file = resolve(dir, 'cdr.spool.lock');
    if (openDirs.has(dir)) throw new SpoolLockedError(dir, process.pid);
    try {
      const pid = Number((await readFile(file, 'utf8')).trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw new SpoolLockedError(dir, pid);
    } catch (err) {
      if (err instanceof SpoolLockedError) throw err;
    }
    openDirs.add(dir);
    await writeFile(file, `${process.pid}\n`, { mode: 0o600 });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
