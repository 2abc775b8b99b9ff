// Shared bench machinery: timing a command, interleaved runc/sysrunc sampling, statistics, the
// result rows and the table. Times are wall-clock milliseconds around a synchronous spawn (the
// bench process does nothing else meanwhile, so the event loop adds no noise); the spawn cost of
// the harness itself is the same for both runtimes and cancels out in the added-ms column.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

export interface Stats {
  readonly n: number;
  readonly median: number;
  /** Nearest-rank 90th percentile. */
  readonly p90: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) return { n: 0, median: Number.NaN, p90: Number.NaN, mean: Number.NaN, min: Number.NaN, max: Number.NaN };
  const s = [...samples].sort((a, b) => a - b);
  const at = (i: number): number => s[Math.min(s.length - 1, Math.max(0, i))] as number;
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
  return {
    n: s.length,
    median,
    p90: at(Math.ceil(0.9 * s.length) - 1),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    min: at(0),
    max: at(s.length - 1),
  };
}

/** Nearest-rank quantile (q in [0, 1]). */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export interface Timed {
  readonly ms: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TimeOptions {
  /** Directory for the stdout/stderr capture files. */
  readonly scratch: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Default 120 s. */
  readonly timeoutMs?: number;
}

let captureSeq = 0;

/**
 * Runs a command with stdout/stderr going to real files (after `create` the container's init holds
 * the runtime's stdio open, so pipes would never reach EOF) and returns its wall time.
 */
export function timeCmd(file: string, args: readonly string[], o: TimeOptions): Timed {
  const tag = `${process.pid}-${++captureSeq}`;
  const outPath = path.join(o.scratch, `.out-${tag}`);
  const errPath = path.join(o.scratch, `.err-${tag}`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  let r: ReturnType<typeof spawnSync>;
  let ms: number;
  try {
    const t0 = performance.now();
    r = spawnSync(file, args, {
      env: o.env ?? process.env,
      cwd: o.cwd ?? o.scratch,
      stdio: ['ignore', out, err],
      timeout: o.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
    });
    ms = performance.now() - t0;
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const result: Timed = {
    ms,
    exitCode: r.status ?? (r.signal !== null ? 128 : 127),
    stdout: readFileSync(outPath, 'utf8'),
    stderr: r.error !== undefined ? `${r.error.message}\n${readFileSync(errPath, 'utf8')}` : readFileSync(errPath, 'utf8'),
  };
  rmSync(outPath, { force: true });
  rmSync(errPath, { force: true });
  return result;
}

/** timeCmd that throws (with the command's stderr) on a non-zero exit; returns the milliseconds. */
export function mustTime(file: string, args: readonly string[], o: TimeOptions): number {
  const r = timeCmd(file, args, o);
  if (r.exitCode !== 0) {
    throw new Error(`${path.basename(file)} ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r.ms;
}

/** Set by a signal handler; sample loops stop at their next checkpoint(). */
export const abort: { reason: string | undefined } = { reason: undefined };

/**
 * Called between samples: lets the event loop run (the samples use spawnSync, which holds signal
 * handlers back) and throws once the bench was interrupted.
 */
export async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (abort.reason !== undefined) throw new Error(`interrupted (${abort.reason})`);
}

export interface Paired {
  readonly runc: number[];
  readonly sysrunc: number[];
}

/**
 * `warmup` discarded pairs, then `n` pairs: a runc sample, then a sysrunc sample, alternating, so
 * drift in machine load hits both sides alike. `i` counts from 0 across warmup and measured pairs.
 */
export async function interleave(
  n: number,
  warmup: number,
  runc: (i: number) => number,
  sysrunc: (i: number) => number,
  progress?: (done: number, total: number) => void,
): Promise<Paired> {
  const out: Paired = { runc: [], sysrunc: [] };
  for (let i = 0; i < warmup + n; i++) {
    await checkpoint();
    const a = runc(i);
    const b = sysrunc(i);
    if (i >= warmup) {
      out.runc.push(a);
      out.sysrunc.push(b);
    }
    progress?.(i + 1, warmup + n);
  }
  return out;
}

export type Target =
  | { readonly kind: 'ratio'; readonly max: number }
  | { readonly kind: 'addedMs'; readonly max: number }
  /** A target computed by the scenario (e.g. relative to another row). */
  | { readonly kind: 'custom'; readonly text: string; readonly met: boolean };

export interface Row {
  readonly scenario: string;
  readonly label: string;
  /** What was run on each side, for the JSON. */
  readonly commands: { readonly runc: string; readonly sysrunc: string };
  readonly runc: Stats;
  readonly sysrunc: Stats;
  /** median(sysrunc) / median(runc) */
  readonly ratio: number;
  /** median(sysrunc) - median(runc) */
  readonly addedMs: number;
  /** Median of the per-pair differences (sysrunc_i - runc_i). */
  readonly pairedAddedMs: number;
  readonly target?: Target;
  readonly met?: boolean;
  readonly samples: Paired;
}

export function makeRow(scenario: string, label: string, commands: Row['commands'], samples: Paired, target?: Target): Row {
  const r = stats(samples.runc);
  const s = stats(samples.sysrunc);
  const ratio = s.median / r.median;
  const addedMs = s.median - r.median;
  const diffs = samples.sysrunc.map((v, i) => v - (samples.runc[i] ?? Number.NaN));
  const row: Row = { scenario, label, commands, runc: r, sysrunc: s, ratio, addedMs, pairedAddedMs: stats(diffs).median, samples };
  if (target === undefined) return row;
  const met = target.kind === 'ratio' ? ratio <= target.max : target.kind === 'addedMs' ? addedMs <= target.max : target.met;
  return { ...row, target, met };
}

export function targetText(t: Target | undefined): string {
  if (t === undefined) return '-';
  if (t.kind === 'ratio') return `ratio <= ${t.max}`;
  if (t.kind === 'addedMs') return `added <= ${t.max} ms`;
  return t.text;
}

const fmt = (ms: number): string => (Number.isFinite(ms) ? (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)) : 'n/a');

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], rightAlign: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

export function resultsTable(rows: readonly Row[]): string {
  const header = ['scenario', 'runc median (p90)', 'sysrunc median (p90)', 'ratio', 'added (paired)', 'target', 'met?'];
  const body = rows.map((r) => [
    `${r.scenario} ${r.label}`,
    `${fmt(r.runc.median)} (${fmt(r.runc.p90)}) ms`,
    `${fmt(r.sysrunc.median)} (${fmt(r.sysrunc.p90)}) ms`,
    Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : 'n/a',
    `${r.addedMs >= 0 ? '+' : ''}${fmt(r.addedMs)} (${r.pairedAddedMs >= 0 ? '+' : ''}${fmt(r.pairedAddedMs)}) ms`,
    targetText(r.target),
    r.met === undefined ? '-' : r.met ? 'yes' : 'NO',
  ]);
  return renderTable(header, body, new Set([1, 2, 3, 4]));
}

export { fmt as fmtMs };

/** Last-in-first-out cleanup steps; every step runs even if an earlier one failed. */
export class Cleanup {
  private readonly steps: Array<{ name: string; fn: () => Promise<void> | void }> = [];
  readonly problems: string[] = [];

  defer(name: string, fn: () => Promise<void> | void): void {
    this.steps.push({ name, fn });
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        await step.fn();
      } catch (err) {
        this.problems.push(`${step.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** A progress callback that prints every ~quarter of the way. */
export function progressLog(what: string): (done: number, total: number) => void {
  return (done, total) => {
    if (done === total || done % Math.max(1, Math.ceil(total / 4)) === 0) log(`${what}: ${done}/${total} pairs`);
  };
}
