// What the load and prepare-steps runs read of their private manager: its own step timings (debug
// log), its resident memory, and (optionally) a CPU profile.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { quantile, renderTable } from './lib.ts';

/** A node for bin/sysrunc-mgr (SYSRUNC_NODE) that writes a .cpuprofile into dir at its exit (node refuses --cpu-prof in NODE_OPTIONS). */
export function profilingNode(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const wrapper = path.join(dir, 'node-cpu-prof');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} --cpu-prof --cpu-prof-dir=${dir} --cpu-prof-interval=200 "$@"\n`, { mode: 0o755 });
  return wrapper;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function residentMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

export interface StepLine {
  readonly steps: Record<string, number>;
  readonly totalMs: number;
}

/** The manager's '<what> steps' log lines (pino JSON, one per prepare or release, or per release's engine side). */
export function stepLines(log: string, what: 'prepare' | 'engine-side release' | 'release'): StepLine[] {
  const out: StepLine[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes(`"${what} steps"`)) continue;
    const parsed = JSON.parse(line) as Partial<StepLine>;
    if (parsed.steps !== undefined && typeof parsed.totalMs === 'number') out.push({ steps: parsed.steps, totalMs: parsed.totalMs });
  }
  return out;
}

/** Median and p90 of every step, and of the total. */
export function stepTable(lines: readonly StepLine[]): string {
  const names = [...new Set(lines.flatMap((l) => Object.keys(l.steps)))];
  const row = (name: string, xs: number[]) => [name, quantile(xs, 0.5).toFixed(2), quantile(xs, 0.9).toFixed(2)];
  const rows = names.map((name) => row(name, lines.map((l) => l.steps[name] ?? 0)));
  rows.push(row('total', lines.map((l) => l.totalMs)));
  return renderTable(['step', 'median ms', 'p90 ms'], rows, new Set([1, 2]));
}

/** The overlay swaps that waited for the outgoing overlay to go (engine-overlay.ts), from the manager's log. */
export function swapWaits(log: string): { count: number; totalMs: number; maxMs: number; notGone: number } {
  const waits = { count: 0, totalMs: 0, maxMs: 0, notGone: 0 };
  for (const line of log.split('\n')) {
    if (!line.includes('"msg":"overlay swap: ')) continue;
    const parsed = JSON.parse(line) as { waitedMs?: number; level?: number };
    const ms = parsed.waitedMs ?? 0;
    waits.count++;
    waits.totalMs += ms;
    waits.maxMs = Math.max(waits.maxMs, ms);
    if ((parsed.level ?? 0) >= 40) waits.notGone++;
  }
  return waits;
}
