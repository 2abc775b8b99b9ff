// --profile: where one `sysrunc create` spends its time, measured from outside (src/ has no tracing).
//  1. start-up baselines, round-robin: `runc --version`, bare `node -e 0`, `node dist/sysrunc.mjs
//     --version` (node + the bundle's module evaluation + a `runc --version` child), `bin/sysrunc
//     --version` (+ the sh launcher);
//  2. `runc create` vs `sysrunc create` and `runc delete` vs `sysrunc delete`, interleaved, untraced;
//  3. (in the same loop as 2) a phase breakdown of `sysrunc create` from syscall timestamps (`perf trace`, kernel
//     tracepoints, no ptrace stops): launcher exec of node, node's connect() to the manager, the
//     register/apply requests written to that socket and the epoll wake-ups of their replies, the
//     execve of runc, the hooks runc forks, and runc's exit.
//     A traced plain `runc create` runs interleaved for comparison with sysrunc's runc phase.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { makeBundle } from '../test/rig/images.ts';
import { bins } from '../test/rig/paths.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, fmtMs, log, makeRow, mustTime, progressLog, renderTable, stats, timeCmd, type Stats } from './lib.ts';


/** The node binary bin/sysrunc would exec. */
function launcherNode(): string {
  const r = spawnSync('sh', ['-c', 'printf %s "${SYSRUNC_NODE:-$(command -v node)}"'], { encoding: 'utf8' });
  return r.stdout.trim() || process.execPath;
}

interface TraceLine {
  readonly ts: number | undefined;
  readonly dur: number | undefined;
  readonly comm: string;
  readonly pid: number;
  readonly syscall: string;
  readonly args: string;
  readonly ret: string;
  readonly continued: boolean;
}

const LINE_RE = /^\s*([\d.]+|\?) \(\s*([\d.]*)\s*(?:ms)?\): (.*?)\/(\d+) +(.*)$/;

export function parsePerfTrace(text: string): TraceLine[] {
  const out: TraceLine[] = [];
  for (const raw of text.split('\n')) {
    const m = LINE_RE.exec(raw);
    if (m === null) continue;
    const [, ts, dur, comm, pid, rest] = m as unknown as [string, string, string, string, string, string];
    const cont = /^\.\.\. \[continued\]: (\w+)\(\)\)\s+= (.*)$/.exec(rest);
    const call = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest) ?? /^(\w+)\((.*)\)\s*(\.\.\.)?$/.exec(rest);
    const base = { ts: ts === '?' ? undefined : Number(ts), dur: dur === '' ? undefined : Number(dur), comm, pid: Number(pid) };
    if (cont !== null) out.push({ ...base, syscall: cont[1] as string, args: '', ret: (cont[2] as string).trim(), continued: true });
    else if (call !== null) out.push({ ...base, syscall: call[1] as string, args: call[2] ?? '', ret: (call[3] ?? '').trim(), continued: false });
  }
  return out;
}

export const PHASES = [
  ['launcher', 'bin/sysrunc (sh) until execve of the per-call binary (~0 for the C launcher, its own per-call side)'],
  ['callBoot', 'per-call side start-up (the C launcher, the C client, or Bun where it is missing) until connect()'],
  ['prepare', 'prepare request written until the reply arrives (the C client\'s poll ends: the manager\'s whole create work)'],
  ['callExit', 'reply until the per-call binary exits (0: the C client execs runc itself)'],
  ['handOver', 'per-call binary exit (or, exec\'ing runc itself, the reply) until execve(runc)'],
  ['runc', 'runc create (execve until exit)'],
  ['runc.hooks', '  of which OCI hooks runc runs (forked by runc, exec a non-runc binary)'],
  ['runc.own', '  of which runc itself (runc phase minus those hooks)'],
  ['total', 'whole sysrunc create (as traced)'],
  ['hookCount', 'number of hook processes per create'],
] as const;
export type Phase = (typeof PHASES)[number][0];

/** Phases of one traced `sysrunc create`, in ms; throws when a marker is missing. */
export function sysruncCreatePhases(lines: readonly TraceLine[]): Record<Phase, number> {
  const ok = (l: TraceLine) => l.ts !== undefined && l.ret === '0';
  // bin/sysrunc's pid is the one that finally execs runc; the per-call binary runs in a child.
  const runcExec = lines.find((l) => l.syscall === 'execve' && l.comm === 'runc' && ok(l));
  // Matched by the file exec'd: the line may carry the old comm (the subshell's) or the new one.
  // The per-call side: the C client (dist/sysrunc-prepare-call; perf shows its comm as "sysrunc-prepar") or the per-call binary.
  const perCall = (s: string) => s.includes('sysrunc-call') || s.includes('sysrunc-prep');
  const callExec = lines.find((l) => l.syscall === 'execve' && (perCall(l.args) || perCall(l.comm)) && l.ts !== undefined && (l.ret === '0' || l.ret === ''));
  // The C launcher (dist/sysrunc) is its own per-call side: the traced process from its start (ts 0), runc after.
  const cLauncher = callExec === undefined && runcExec !== undefined && lines.some((l) => l.pid === runcExec.pid && l.comm === 'sysrunc');
  if (runcExec === undefined || (callExec === undefined && !cLauncher)) throw new Error(`trace: no execve of the per-call binary and then of runc (${lines.length} lines)`);
  const call = callExec?.pid ?? runcExec.pid;
  const at = (what: string, pred: (l: TraceLine) => boolean, after: number): TraceLine => {
    const l = lines.find((x) => x.ts !== undefined && x.ts >= after && pred(x));
    if (l === undefined) throw new Error(`trace: no ${what}`);
    return l;
  };
  const tCall = callExec?.ts ?? 0;
  const connect = at('connect()', (l) => l.pid === call && l.syscall === 'connect' && l.ret === '0', tCall);
  const fd = /fd: (\d+)/.exec(connect.args)?.[1];
  if (fd === undefined) throw new Error('trace: connect() without fd');
  // Bun's socket writes with sendto; a plain write(2) on the fd counts too.
  const request = at('prepare request', (l) => l.pid === call && (l.syscall === 'write' || l.syscall === 'sendto') && l.args.startsWith(`fd: ${fd},`), connect.ts as number);
  // The reply: the end of the C client's poll() for it (its "[continued]" line where perf split it).
  const polled = at('poll for the reply', (l) => l.pid === call && l.syscall === 'poll' && !l.continued, request.ts as number);
  const resumed = lines.find((l) => l.pid === call && l.syscall === 'poll' && l.continued && l.ts !== undefined && l.ts >= (polled.ts as number));
  const tReply = resumed?.ts ?? (polled.ts as number) + (polled.dur ?? 0);
  // The C client that execs runc itself (create's hand-over) has no exit of its own: its pid becomes runc.
  const tExit = runcExec.pid === call ? tReply : (at('per-call exit', (l) => l.pid === call && l.syscall === 'exit_group', tReply).ts as number);
  const tRunc = runcExec.ts as number;
  const tEnd = runcExit(lines, tRunc);
  const hooks = hookTime(lines, tRunc);
  return {
    launcher: tCall,
    callBoot: (connect.ts as number) - tCall,
    prepare: tReply - (request.ts as number),
    callExit: tExit - tReply,
    handOver: tRunc - tExit,
    runc: tEnd - tRunc,
    'runc.hooks': hooks.ms,
    'runc.own': tEnd - tRunc - hooks.ms,
    hookCount: hooks.count,
    total: tEnd,
  };
}

const runcish = (comm: string): boolean => comm === 'runc' || comm.startsWith('runc:') || comm === 'exe';

/**
 * OCI hooks run by runc: processes that a task called "runc" forked (clone/clone3/fork/vfork
 * returning their pid) and that exec something other than runc itself (runc's init children exec
 * /proc/self/exe, "exe", and rename themselves "runc:[...]"). Returns how many ran and their summed
 * lifetimes, from their execve until their exit_group (their own children included in that span).
 */
export function hookTime(lines: readonly TraceLine[], after: number): { count: number; ms: number } {
  const forkedByRunc = new Set<number>();
  for (const l of lines) {
    const child = /^(\d+)/.exec(l.ret)?.[1]; // "= 543" or "= 543 (comm)"
    if (l.comm === 'runc' && /^(clone3?|v?fork)$/.test(l.syscall) && child !== undefined && Number(child) > 0) forkedByRunc.add(Number(child));
  }
  const spans = new Map<number, { start: number; end?: number }>();
  for (const l of lines) {
    if (!forkedByRunc.has(l.pid) || l.ts === undefined || l.ts < after) continue;
    if (l.syscall === 'execve' && l.ret === '0' && !runcish(l.comm)) {
      const s = spans.get(l.pid);
      spans.set(l.pid, { ...s, start: Math.min(s?.start ?? Infinity, l.ts) });
    } else if (l.syscall === 'exit_group' && spans.has(l.pid)) {
      const s = spans.get(l.pid) as { start: number; end?: number };
      s.end = Math.max(s.end ?? 0, l.ts);
    }
  }
  let ms = 0;
  let count = 0;
  for (const s of spans.values()) {
    if (s.end === undefined) continue;
    ms += s.end - s.start;
    count++;
  }
  return { count, ms };
}

/** The last exit_group of a task still called "runc" (runc's own threads; its init children rename themselves). */
export function runcExit(lines: readonly TraceLine[], after: number): number {
  let end: number | undefined;
  for (const l of lines) {
    if (l.syscall === 'exit_group' && l.comm === 'runc' && l.ts !== undefined && l.ts >= after) end = Math.max(end ?? 0, l.ts);
  }
  if (end === undefined) throw new Error('trace: no exit_group of runc');
  return end;
}

function perfAvailable(): string | undefined {
  const r = spawnSync('perf', ['trace', '-e', 'execve', '--', '/bin/true'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return `perf not runnable: ${r.error.message}`;
  if (r.status !== 0 || !r.stderr.includes('execve')) return `perf trace does not work here: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
  return undefined;
}

export const TRACED = 'execve,connect,write,sendto,poll,exit_group,clone,clone3,fork,vfork';

/** `perf trace -p <manager>` of fsync/fdatasync in the background; stop() returns their durations (ms). */
async function traceManagerFsyncs(pid: number, out: string): Promise<{ stop(): Promise<number[]> }> {
  const child = spawn('perf', ['trace', '-p', String(pid), '-o', out, '-e', 'fsync,fdatasync'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, 1000)); // perf attaches asynchronously
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      let text = '';
      try {
        text = readFileSync(out, 'utf8');
      } catch {
        return [];
      }
      return parsePerfTrace(text)
        .filter((l) => (l.syscall === 'fsync' || l.syscall === 'fdatasync') && l.dur !== undefined)
        .map((l) => l.dur as number);
    },
  };
}

export const profileScenario: Scenario = {
  key: 'profile',
  alias: 'p',
  title: '(p) profile: start-up baselines, create/delete, phases of one sysrunc create',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    // --n as every scenario (20 before round 11): create's bar (+12 ms) is near the run-to-run
    // spread of a 20-pair median (+7 to +14 ms for one build), so a tighter read takes more pairs.
    const n = ctx.opts.quick ? 5 : ctx.opts.n;
    const warmup = ctx.opts.warmup;
    const env = await ctx.sysruncEnv();
    const o = { scratch: ctx.work, env };
    const notes: string[] = [];
    const rootfs = await ctx.busyboxRootfs();
    const bundles = {
      runc: (await makeBundle(path.join(ctx.work, 'prof-runc'), rootfs, ['sleep', '1000'])).bundle,
      sysrunc: (await makeBundle(path.join(ctx.work, 'prof-sysrunc'), rootfs, ['sleep', '1000'])).bundle,
    };

    // 1. start-up baselines
    const node = launcherNode();
    const baseCmds: Array<[string, string, string[]]> = [
      ['runc --version', bins.runc, ['--version']],
      ['node -e 0', node, ['-e', '0']],
      ['node dist/sysrunc.mjs --version', node, [ctx.distMain, '--version']],
      ['bin/sysrunc --version', ctx.sysrunc, ['--version']],
    ];
    const baseSamples = baseCmds.map(() => [] as number[]);
    for (let i = 0; i < warmup + n; i++) {
      await checkpoint();
      baseCmds.forEach(([, bin, args], k) => {
        const ms = mustTime(bin, args, o);
        if (i >= warmup) baseSamples[k]?.push(ms);
      });
    }
    const baselines = baseCmds.map(([label], k) => ({ label, ...stats(baseSamples[k] ?? []) }));
    const med = (k: number): number => baselines[k]?.median ?? Number.NaN;
    const derived = {
      nodeBareMs: med(1),
      bundleEvalMs: med(2) - med(1) - med(0),
      launcherMs: med(3) - med(2),
    };
    log('(p) baselines done');

    // 2 + 3. per iteration, all in the same time window: untraced runc/sysrunc create, then (with
    // perf) a traced runc/sysrunc create, then untraced runc/sysrunc delete of the first two.
    const noPerf = perfAvailable();
    if (noPerf !== undefined) notes.push(`(p) phase breakdown skipped: ${noPerf}`);
    // The manager's fsyncs (its state file is written atomically: file + directory) during the loop.
    const mgrTrace = noPerf === undefined ? await traceManagerFsyncs((await ctx.manager()).pid(), path.join(ctx.work, 'mgr-fsync-trace')) : undefined;
    const traced = (bin: string, root: string, bundle: string, cid: string): string => {
      const out = path.join(ctx.work, `trace-${cid}`);
      const r = timeCmd('perf', ['trace', '-o', out, '-e', TRACED, '--', bin, '--root', root, 'create', '--bundle', bundle, cid], o);
      const text = readFileSync(out, 'utf8');
      rmSync(out, { force: true });
      const st = spawnSync(bins.runc, ['--root', root, 'state', cid], { encoding: 'utf8' });
      if (st.status !== 0) throw new Error(`traced ${path.basename(bin)} create ${cid} failed (perf exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return text;
    };
    const id = (rt: string, i: number): string => `bench-p-${rt}-${ctx.tag}-${i}`;
    const tid = (rt: string, i: number): string => `bench-pt-${rt}-${ctx.tag}-${i}`;
    const create = { runc: [] as number[], sysrunc: [] as number[] };
    const del = { runc: [] as number[], sysrunc: [] as number[] };
    const phases: Array<Record<Phase, number>> = [];
    const runcTotals: number[] = [];
    const unusable: string[] = [];
    const progress = progressLog('(p) create/delete');
    let fsyncMs: number[] | undefined;
    try {
      for (let i = 0; i < warmup + n; i++) {
        await checkpoint();
        const c1 = mustTime(bins.runc, ['--root', ctx.roots.runc, 'create', '--bundle', bundles.runc, id('runc', i)], o);
        const c2 = mustTime(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'create', '--bundle', bundles.sysrunc, id('sysrunc', i)], o);
        let traces: [string, string] | undefined;
        if (noPerf === undefined) {
          traces = [traced(bins.runc, ctx.roots.runc, bundles.runc, tid('runc', i)), traced(ctx.sysrunc, ctx.roots.sysrunc, bundles.sysrunc, tid('sysrunc', i))];
          mustTime(bins.runc, ['--root', ctx.roots.runc, 'delete', tid('runc', i)], o);
          mustTime(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'delete', tid('sysrunc', i)], o);
        }
        const d1 = mustTime(bins.runc, ['--root', ctx.roots.runc, 'delete', id('runc', i)], o);
        const d2 = mustTime(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'delete', id('sysrunc', i)], o);
        progress(i + 1, warmup + n);
        if (i < warmup) continue;
        create.runc.push(c1);
        create.sysrunc.push(c2);
        del.runc.push(d1);
        del.sysrunc.push(d2);
        if (traces !== undefined) {
          // perf can lose events on a busy machine; a trace without its markers is skipped, not fatal.
          try {
            const runcTotal = runcExit(parsePerfTrace(traces[0]), 0);
            const p = sysruncCreatePhases(parsePerfTrace(traces[1]));
            runcTotals.push(runcTotal);
            phases.push(p);
          } catch (err) {
            unusable.push(`${i}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
    } finally {
      fsyncMs = mgrTrace !== undefined ? await mgrTrace.stop() : undefined;
    }
    const rows = [
      makeRow('(p)', '--version', { runc: 'runc --version', sysrunc: 'bin/sysrunc --version' }, { runc: baseSamples[0] ?? [], sysrunc: baseSamples[3] ?? [] }),
      makeRow('(p)', 'create (created)', { runc: 'runc --root R create --bundle B <id>', sysrunc: 'bin/sysrunc --root R create --bundle B <id>' }, create),
      makeRow('(p)', 'delete (created)', { runc: 'runc --root R delete <id>', sysrunc: 'bin/sysrunc --root R delete <id>' }, del),
    ];
    const sysruncCycles = (warmup + n) * (noPerf === undefined ? 2 : 1);
    const managerFsync =
      fsyncMs !== undefined ? { count: fsyncMs.length, perCreateDelete: fsyncMs.length / sysruncCycles, totalMs: fsyncMs.reduce((a, b) => a + b, 0), ...stats(fsyncMs) } : undefined;
    const breakdown = phases.length > 0 ? Object.fromEntries(PHASES.map(([k]) => [k, stats(phases.map((p) => p[k]))])) : undefined;
    const tracedRunc = runcTotals.length > 0 ? stats(runcTotals) : undefined;
    if (unusable.length > 0) notes.push(`(p) ${unusable.length} of ${n} trace pairs unusable and skipped: ${unusable.slice(0, 3).join('; ')}`);

    return {
      rows,
      notes,
      extra: { n, baselines, derived, breakdown, phaseSamples: phases, managerFsync, tracedRuncCreate: tracedRunc, perf: noPerf ?? `perf trace -e ${TRACED}` },
    };
  },
};

/** The profile's own tables (printed after the main table). */
export function renderProfile(extra: Record<string, unknown> | undefined): string {
  if (extra === undefined) return '';
  const parts: string[] = [];
  const baselines = extra['baselines'] as Array<{ label: string } & Stats> | undefined;
  const derived = extra['derived'] as { nodeBareMs: number; bundleEvalMs: number; launcherMs: number } | undefined;
  if (baselines !== undefined) {
    parts.push(
      renderTable(
        ['start-up baseline', 'median (p90)'],
        baselines.map((b) => [b.label, `${fmtMs(b.median)} (${fmtMs(b.p90)}) ms`]),
        new Set([1]),
      ),
    );
  }
  if (derived !== undefined) {
    parts.push(
      `derived: bare node start-up ${fmtMs(derived.nodeBareMs)} ms; dist/sysrunc.mjs module load+eval ~${fmtMs(derived.bundleEvalMs)} ms ` +
        `(node dist --version - node -e 0 - runc --version)`,
    );
  }
  const breakdown = extra['breakdown'] as Record<Phase, Stats> | undefined;
  const tracedRunc = extra['tracedRuncCreate'] as Stats | undefined;
  if (breakdown !== undefined) {
    const total = breakdown.total.median;
    parts.push(
      renderTable(
        ['sysrunc create phase (perf trace)', 'median (p90)', 'share', 'what'],
        PHASES.map(([k, what]) => [
          k,
          k === 'hookCount' ? `${breakdown[k].median} (${breakdown[k].p90})` : `${fmtMs(breakdown[k].median)} (${fmtMs(breakdown[k].p90)}) ms`,
          k === 'total' || k === 'hookCount' ? '' : `${((100 * breakdown[k].median) / total).toFixed(0)}%`,
          what,
        ]),
        new Set([1, 2]),
      ),
    );
    const f = extra['managerFsync'] as ({ count: number; perCreateDelete: number; totalMs: number } & Stats) | undefined;
    if (f !== undefined && f.count > 0) {
      parts.push(
        `manager fsyncs during the loop: ${f.count} (${f.perCreateDelete.toFixed(1)} per sysrunc create+delete), ` +
          `median ${fmtMs(f.median)} ms, p90 ${fmtMs(f.p90)} ms, max ${fmtMs(f.max)} ms, total ${fmtMs(f.totalMs)} ms`,
      );
    }
    if (tracedRunc !== undefined) {
      parts.push(`plain runc create, traced the same way: ${fmtMs(tracedRunc.median)} (${fmtMs(tracedRunc.p90)}) ms (compare with the runc phase above)`);
    }
    parts.push('(phase medians are taken separately, so they need not add up to the total median)');
  }
  return parts.join('\n\n');
}
