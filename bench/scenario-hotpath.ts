// Issue 8's other hot-path numbers, on the bench's private dockerd:
// (g) `docker exec <id> true` into a running bb:local container, --runtime=runc vs sysrunc,
//     interleaved (sysrunc's exec grants the system container's capabilities to the process).
// (h) 50 `docker run -d` started at once per runtime (runc batch, then sysrunc batch, alternating
//     for --rounds): each container's own `docker run` wall time, median and p99 per side.
// (m) the manager's resident memory with 0 and with 100 running sysrunc containers.
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, interleave, log, makeRow, mustTime, progressLog, quantile, type Paired } from './lib.ts';

const BB = 'bb:local';
export const EXEC_TARGET_RATIO = 1.25;
// SYSRUNC_BENCH_PARALLEL: another batch size (issue 24 compares 100 at once with bench/load.ts).
const PARALLEL = Number(process.env['SYSRUNC_BENCH_PARALLEL'] ?? '') > 0 ? Math.floor(Number(process.env['SYSRUNC_BENCH_PARALLEL'])) : 50;
const MEMORY_CONTAINERS = 100;

export const execScenario: Scenario = {
  key: 'exec',
  alias: 'g',
  title: `(g) docker exec <id> true into a running ${BB}, runc vs sysrunc`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    await ensureDockerImage(d, BB);
    const o = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 60_000 };
    const names = { runc: `bench-g-runc-${ctx.tag}`, sysrunc: `bench-g-sysrunc-${ctx.tag}` };
    for (const rt of ['runc', 'sysrunc'] as const) {
      mustTime(d.cli, ['run', '-d', '--name', names[rt], `--runtime=${rt}`, BB, 'sleep', '100000'], o);
      ctx.cleanup.defer(`container ${names[rt]}`, () => void mustTime(d.cli, ['rm', '-f', names[rt]], o));
    }
    const exec = (name: string) => () => mustTime(d.cli, ['exec', name, 'true'], o);
    const samples = await interleave(ctx.opts.n, ctx.opts.warmup, exec(names.runc), exec(names.sysrunc), progressLog('(g) exec'));
    return { rows: [makeRow('(g)', `docker exec ${BB} true`, { runc: 'docker exec <runc container> true', sysrunc: 'docker exec <sysrunc container> true' }, samples, { kind: 'ratio', max: EXEC_TARGET_RATIO })] };
  },
};

/** `count` docker runs started at once; resolves with each one's wall time in ms. */
function parallelRuns(d: DockerDaemon, ctx: BenchContext, runtime: string, prefix: string, count: number): Promise<number[]> {
  const env = ctx.dockerEnv(d);
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      new Promise<number>((resolve, reject) => {
        const start = performance.now();
        const child = spawn(d.cli, ['run', '-d', '--name', `${prefix}-${i}`, `--runtime=${runtime}`, BB, 'sleep', '100000'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('exit', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`docker run ${prefix}-${i} (${runtime}): exit ${code}: ${err.trim()}`))));
      }),
    ),
  );
}

function removeAll(d: DockerDaemon, ctx: BenchContext, prefix: string, count: number): void {
  mustTime(d.cli, ['rm', '-f', ...Array.from({ length: count }, (_, i) => `${prefix}-${i}`)], { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 300_000 });
}

export const parallelScenario: Scenario = {
  key: 'parallel',
  alias: 'h',
  title: `(h) ${PARALLEL} docker run -d at once, runc vs sysrunc: per-container wall time`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    await ensureDockerImage(d, BB);
    const rounds = ctx.opts.quick ? 1 : 3;
    const samples: Paired = { runc: [], sysrunc: [] };
    for (let r = 0; r < rounds; r++) {
      for (const rt of ['runc', 'sysrunc'] as const) {
        await checkpoint();
        const prefix = `bench-h-${rt}-${ctx.tag}-${r}`;
        try {
          samples[rt].push(...(await parallelRuns(d, ctx, rt, prefix, PARALLEL)));
        } finally {
          removeAll(d, ctx, prefix, PARALLEL);
        }
      }
      log(`(h) parallel: ${r + 1}/${rounds} rounds of ${PARALLEL} per runtime`);
    }
    const row = makeRow('(h)', `${PARALLEL} x docker run -d at once`, { runc: `${PARALLEL} x docker run -d --runtime=runc`, sysrunc: `${PARALLEL} x docker run -d --runtime=sysrunc` }, samples);
    const p99 = (xs: number[]) => quantile(xs, 0.99).toFixed(0);
    return { rows: [row], notes: [`(h) per-container docker run -d with ${PARALLEL} at once (${rounds} rounds): p99 runc ${p99(samples.runc)} ms, sysrunc ${p99(samples.sysrunc)} ms`] };
  },
};

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

export const memoryScenario: Scenario = {
  key: 'memory',
  alias: 'm',
  title: `(m) sysrunc-mgr resident memory with 0 and ${MEMORY_CONTAINERS} running containers`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    await ensureDockerImage(d, BB);
    const mgr = await ctx.manager();
    const idle = rssKiB(mgr.pid());
    const prefix = `bench-m-${ctx.tag}`;
    let loaded = Number.NaN;
    try {
      for (let done = 0; done < MEMORY_CONTAINERS; done += 25) {
        await parallelRuns(d, ctx, 'sysrunc', `${prefix}-${done / 25}`, 25);
      }
      loaded = rssKiB(mgr.pid());
    } finally {
      for (let b = 0; b < MEMORY_CONTAINERS / 25; b++) removeAll(d, ctx, `${prefix}-${b}`, 25);
    }
    const after = rssKiB(mgr.pid());
    const mb = (k: number) => (k / 1024).toFixed(1);
    return {
      rows: [],
      notes: [`(m) sysrunc-mgr RSS: ${mb(idle)} MiB with 0 containers, ${mb(loaded)} MiB with ${MEMORY_CONTAINERS} running, ${mb(after)} MiB after removing them`],
      extra: { rssKiB: { idle, loaded, after } },
    };
  },
};
