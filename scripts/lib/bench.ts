/**
 * Helpers the benchmark scripts share: machine facts, CPU accounting from
 * /proc (per process and machine-wide, so a run can show when something else
 * was using the cores), percentiles, and writing one marked section of
 * docs/benchmarks.md without touching the others.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux this runs on). */
const TICKS_PER_S = 100;

export const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

export function machineFacts(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`;
}

export const today = (): string => new Date().toISOString().slice(0, 10);

/** The p-quantile (0..1) of xs, nearest rank; 0 when empty. */
export function pctl(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
}

export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / TICKS_PER_S, total: total / TICKS_PER_S };
}

/**
 * Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` in
 * docs/benchmarks.md (markers included in `section`), or appends it.
 */
export function writeBenchSection(name: string, section: string): void {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  if (!section.startsWith(begin) || !section.trimEnd().endsWith(end)) throw new TypeError(`section must be wrapped in ${begin} ... ${end}`);
  const path = resolve(import.meta.dirname, '..', '..', 'docs/benchmarks.md');
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + section.trimEnd() + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${section.trimEnd()}\n`;
  writeFileSync(path, text);
}

/**
 * Waits (up to `maxMs`) for a second in which processes other than ours use
 * less than `threshold` cores; `ownCpuSeconds` returns the CPU seconds our own
 * processes have used so far. Resolves with the cores others used in the last
 * second sampled, so a report can say how busy the machine was.
 */
export async function waitForQuiet(ownCpuSeconds: () => Promise<number>, maxMs = 10_000, threshold = 0.3): Promise<number> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const m0 = machineCpuSeconds().busy;
    const o0 = await ownCpuSeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const others = (machineCpuSeconds().busy - m0 - ((await ownCpuSeconds()) - o0)) / ((performance.now() - t0) / 1000);
    if (others < threshold || performance.now() > deadline) return Math.max(0, others);
  }
}
