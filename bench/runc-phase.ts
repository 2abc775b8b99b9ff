// Where create's added time goes inside `docker run --rm bb:local true`: the same sh wrapper times
// the runtime call dockerd's shim makes (outer: runc, or bin/sysrunc) and, inside it, runc's own
// create (for sysrunc: the runc the C client execs after the manager's prepare), runs alternating.
// sysrunc's create = before runc (launcher, client, prepare, hand-over) + runc + after runc; the
// manager's own step timings of the same creates are printed beside them.
//   node --import tsx bench/runc-phase.ts [--n 20] [--out <dir>] [--tracer none|perf|calls]
//     [--base <another checkout's bin/sysrunc>] [--background <k>]
// --base: that launcher (and the dist/ beside it) as a third runtime, same manager, interleaved;
// only its outer create time is taken. --background: k `docker run -d` containers (runc) kept
// running meanwhile, their overlays in every runc mount namespace sysrunc makes.
// --tracer perf keeps a `perf trace` of each runc create (every syscall: for reading, not timing).
// --tracer calls: no inner wrapper; the outer call runs under `perf trace` of a few syscalls (the
// ones bench (p) reads), and sysrunc's create is cut into (p)'s phases, inside dockerd.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import { quantile } from './lib.ts';
import { stepLines, stepTable } from './mgr-profile.ts';
import { parsePerfTrace, PHASES, runcExit, sysruncCreatePhases, TRACED, type Phase } from './profile.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '20' }, out: { type: 'string', default: '/tmp/runc-phase' }, tracer: { type: 'string', default: 'none' }, base: { type: 'string' }, background: { type: 'string', default: '0' } } });
const N = Number(values.n);
if (!Number.isInteger(N) || N < 1) throw new Error('runc-phase: --n takes a positive integer');
const WARMUP = 2;
const out = values.out as string;

/** A wrapper that times `create` calls of `runtime` into <out>/<log>.times ("<start ns> <end ns> <id>"). */
function writeTimer(file: string, runtime: string, log: string, trace: 'all' | 'calls' | 'none'): void {
  const tracer = trace === 'none' ? '' : `perf trace -o "${out}/${log}-$id.trace" ${trace === 'calls' ? `-e ${TRACED} ` : ''}-- `;
  writeFileSync(
    file,
    [
      '#!/bin/sh',
      'id=; create=0',
      'for a in "$@"; do case $a in create) create=1 ;; esac; id=$a; done',
      `[ $create = 1 ] || exec ${runtime} "$@"`,
      `s=$(date +%s%N); ${tracer}${runtime} "$@"; rc=$?; e=$(date +%s%N)`,
      `echo "$s $e $id" >> "${out}/${log}.times"`,
      'exit $rc',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}

function times(log: string): Map<string, { s: number; e: number }> {
  const m = new Map<string, { s: number; e: number }>();
  for (const line of readFileSync(path.join(out, `${log}.times`), 'utf8').split('\n')) {
    const [s, e, id] = line.split(' ');
    if (s !== undefined && e !== undefined && id !== undefined) m.set(id, { s: Number(BigInt(s) / 1000n) / 1000, e: Number(BigInt(e) / 1000n) / 1000 });
  }
  return m;
}

const med = (xs: number[]): string =>
  xs.length === 0 ? '-' : `${quantile(xs, 0.5).toFixed(1)} (${quantile(xs, 0.25).toFixed(1)}-${quantile(xs, 0.75).toFixed(1)})`;

async function main(): Promise<void> {
  if (process.env['RUNC_PHASE_REPARSE'] !== undefined) {
    // Re-read the traces of a run already made (<out>/ids holds its ids).
    printPhases(readFileSync(path.join(out, 'ids'), 'utf8').split('\n').filter(Boolean), '?', '?');
    return;
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const calls = values.tracer === 'calls';
  const trace = values.tracer === 'perf' ? 'all' : 'none';
  const [runcOuter, sysOuter, sysRunc] = ['runc-outer', 'sysrunc-outer', 'sysrunc-runc'].map((n) => path.join(out, n)) as [string, string, string];
  writeTimer(runcOuter, 'runc', 'runc', calls ? 'calls' : trace);
  writeTimer(sysRunc, 'runc', 'sysrunc-runc', trace);
  // Beside a base build only the outer times are compared: no inner wrapper on either.
  writeTimer(sysOuter, calls || values.base !== undefined ? SYSRUNC : `env SYSRUNC_RUNTIME=${sysRunc} ${SYSRUNC}`, 'sysrunc', calls ? 'calls' : 'none');
  const base = values.base;
  const baseOuter = path.join(out, 'base-outer');
  if (base !== undefined) writeTimer(baseOuter, base, 'base', 'none');
  const mgr = await startTestManager({ name: 'runc-phase' });
  let d: DockerDaemon | undefined;
  try {
    const runtimes = { 'runc-outer': { path: runcOuter }, 'sysrunc-outer': { path: sysOuter }, ...(base === undefined ? {} : { 'base-outer': { path: baseOuter } }) };
    d = await startDockerd({ name: 'runc-phase', runtimes, env: mgr.env });
    await ensureDockerImage(d);
    for (let i = 0; i < Number(values.background); i++) await d.docker(['run', '-d', '--runtime=runc', 'bb:local', 'sleep', '100000']);
    const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const ids: string[] = [];
    for (let i = 0; i < WARMUP + N; i++) {
      for (const rt of Object.keys(runtimes)) {
        const cid = path.join(out, 'cid');
        await d.docker(['run', '--rm', '--cidfile', cid, `--runtime=${rt}`, 'bb:local', 'true']);
        if (i >= WARMUP) ids.push(readFileSync(cid, 'utf8').trim());
        rmSync(cid);
      }
    }
    const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    writeFileSync(path.join(out, 'ids'), `${ids.join('\n')}\n`);
    if (base !== undefined) {
      const walls = (log: string) => ids.flatMap((id) => { const t = times(log).get(id); return t === undefined ? [] : [t.e - t.s]; });
      console.log(`load average ${load0} -> ${load1}; outer create, median (p25-p75) ms, ${values.background} containers running: runc ${med(walls('runc'))}, sysrunc ${med(walls('sysrunc'))}, base ${med(walls('base'))}`);
      return;
    }
    if (calls) {
      printPhases(ids, load0, load1);
      return;
    }
    const [r, s, sr] = [times('runc'), times('sysrunc'), times('sysrunc-runc')];
    const runc: number[] = [], sys: number[] = [], sysInner: number[] = [], before: number[] = [], after: number[] = [];
    for (const id of ids) {
      const a = r.get(id), b = s.get(id), c = sr.get(id);
      if (a !== undefined) runc.push(a.e - a.s);
      if (b !== undefined && c !== undefined) {
        sys.push(b.e - b.s);
        sysInner.push(c.e - c.s);
        before.push(c.s - b.s);
        after.push(b.e - c.e);
      }
    }
    console.log(`load average ${load0} -> ${load1}; create inside docker run --rm bb:local true, n=${N} each, median (p25-p75) ms`);
    console.log(`plain runc create              ${med(runc)}`);
    console.log(`sysrunc create                 ${med(sys)}`);
    console.log(`  before runc (launcher, client, prepare, hand-over) ${med(before)}`);
    console.log(`  runc create                  ${med(sysInner)}`);
    console.log(`  after runc                   ${med(after)}`);
    const prepares = stepLines(mgr.log(), 'prepare').slice(WARMUP);
    console.log(`the manager's prepare steps (${prepares.length}):\n${stepTable(prepares)}`);
  } finally {
    const prepares = stepLines(mgr.log(), 'prepare').slice(WARMUP);
    if (calls) console.log(`the manager's prepare steps (${prepares.length}):\n${stepTable(prepares)}`);
    await d?.stop();
    await mgr.dispose();
  }
}

/** (p)'s phases of each traced sysrunc create, and plain runc's create traced the same way. */
function printPhases(ids: readonly string[], load0: string, load1: string): void {
  const phases: Array<Record<Phase, number>> = [];
  const runc: number[] = [];
  const unusable: string[] = [];
  const wall = { runc: [] as number[], sysrunc: [] as number[] };
  const [r, s] = [times('runc'), times('sysrunc')];
  for (const id of ids) {
    for (const side of ['runc', 'sysrunc'] as const) {
      let text: string;
      try {
        text = readFileSync(path.join(out, `${side}-${id}.trace`), 'utf8');
      } catch {
        continue; // the other runtime's container
      }
      const t = (side === 'runc' ? r : s).get(id);
      if (t !== undefined) wall[side].push(t.e - t.s);
      const lines = parsePerfTrace(text);
      try {
        if (side === 'sysrunc') phases.push(sysruncCreatePhases(lines));
        else runc.push(runcExit(lines, 0)); // perf's clock starts at runc's execve
      } catch (err) {
        unusable.push(`${side} ${id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
  }
  console.log(`load average ${load0} -> ${load1}; create inside docker run --rm bb:local true, traced (${TRACED}), n=${phases.length}/${runc.length}, median (p25-p75) ms`);
  console.log(`wall of the traced call: runc ${med(wall.runc)}, sysrunc ${med(wall.sysrunc)}`);
  for (const [name, what] of PHASES) console.log(`${name.padEnd(10)} ${med(phases.map((p) => p[name])).padEnd(22)} ${what}`);
  console.log(`plain runc create, traced the same way: ${med(runc)}`);
  if (unusable.length > 0) console.log(`traces left out: ${unusable.join('; ')}`);
}

await main();
