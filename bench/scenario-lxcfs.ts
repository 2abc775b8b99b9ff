// (k) The cost of the lxcfs views on `docker run`: `docker run --rm --runtime=sysrunc bb:local true`
//     with the lxcfs binds (the default) against the same with SYSRUNC_LXCFS=false, and plain runc,
//     interleaved (runc, sysrunc without, sysrunc with, per iteration). Selecting this scenario runs
//     the bench's manager with its lxcfs (BenchContext.manager). And the cost of the mount listener
//     (nested containers' figures): the same run with SYSRUNC_LXCFS_NESTED=false against the default.
import { ensureDockerImage } from '../test/rig/images.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, fmtMs, log, makeRow, mustTime, timeCmd, type Paired } from './lib.ts';

const BB = 'bb:local';
/** What the binds may add to a docker run, at most (8 read-only binds, a few ms in runc). */
export const LXCFS_TARGET_RATIO = 1.1;

export const lxcfsScenario: Scenario = {
  key: 'lxcfs',
  alias: 'k',
  title: `(k) docker run --rm ${BB} true under sysrunc, with and without the lxcfs views (and runc)`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    await ensureDockerImage(d, BB);
    const o = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 120_000 };
    // Sanity: the views are there by default, gone with the setting.
    const views = (env: readonly string[]) => timeCmd(d.cli, ['run', '--rm', '--runtime=sysrunc', ...env, BB, 'grep', '-c', 'fuse.lxcfs', '/proc/self/mountinfo'], o).stdout.trim();
    if (views([]) !== '8' || views(['-e', 'SYSRUNC_LXCFS=false']) !== '0') throw new Error(`(k) lxcfs views not as expected: with ${views([])}, without ${views(['-e', 'SYSRUNC_LXCFS=false'])}`);
    // And the mount listener: a procfs mounted inside gets lxcfs's 7 /proc files bound over it.
    const nested = (env: readonly string[]) =>
      timeCmd(d.cli, ['run', '--rm', '--runtime=sysrunc', ...env, BB, 'sh', '-c', 'mkdir -p /tmp/p && mount -t proc proc /tmp/p && grep -c fuse.lxcfs /proc/self/mountinfo'], o).stdout.trim();
    if (nested([]) !== '15' || nested(['-e', 'SYSRUNC_LXCFS_NESTED=false']) !== '8') throw new Error(`(k) mount listener not as expected: lxcfs mounts after a procfs mount ${nested([])} with it, ${nested(['-e', 'SYSRUNC_LXCFS_NESTED=false'])} without`);
    const run = (runtime: string, env: readonly string[]): number => mustTime(d.cli, ['run', '--rm', `--runtime=${runtime}`, ...env, BB, 'true'], o);
    const runc: number[] = [];
    const without: number[] = [];
    const withViews: number[] = [];
    const noListener: number[] = [];
    const total = ctx.opts.warmup + ctx.opts.n;
    for (let i = 0; i < total; i++) {
      await checkpoint();
      const a = run('runc', []);
      const b = run('sysrunc', ['-e', 'SYSRUNC_LXCFS=false']);
      const c = run('sysrunc', []);
      const e = run('sysrunc', ['-e', 'SYSRUNC_LXCFS_NESTED=false']);
      if (i >= ctx.opts.warmup) {
        runc.push(a);
        without.push(b);
        withViews.push(c);
        noListener.push(e);
      }
      if ((i + 1) % Math.max(1, Math.ceil(total / 4)) === 0 || i + 1 === total) log(`(k) ${i + 1}/${total} iterations`);
    }
    // The views alone: the listener is off in the "with" column here (it has its own row).
    const views8: Paired = { runc: without, sysrunc: noListener };
    const vsRunc: Paired = { runc, sysrunc: withViews };
    const listener = makeRow('(k)', 'mount listener: sysrunc with vs without', { runc: `docker run --rm --runtime=sysrunc -e SYSRUNC_LXCFS_NESTED=false ${BB} true`, sysrunc: `docker run --rm --runtime=sysrunc ${BB} true` }, { runc: noListener, sysrunc: withViews });
    const cost = makeRow('(k)', 'lxcfs views: sysrunc with vs without', { runc: `docker run --rm --runtime=sysrunc -e SYSRUNC_LXCFS=false ${BB} true`, sysrunc: `docker run --rm --runtime=sysrunc -e SYSRUNC_LXCFS_NESTED=false ${BB} true` }, views8, { kind: 'ratio', max: LXCFS_TARGET_RATIO });
    const overall = makeRow('(k)', 'sysrunc with lxcfs vs runc', { runc: `docker run --rm --runtime=runc ${BB} true`, sysrunc: `docker run --rm --runtime=sysrunc ${BB} true` }, vsRunc);
    return {
      rows: [cost, listener, overall],
      notes: [
        `(k) first row: the "runc" column is sysrunc WITHOUT the lxcfs views (SYSRUNC_LXCFS=false), the "sysrunc" column WITH them (and no mount listener); ` +
          `the views add ${fmtMs(cost.addedMs)} ms (paired ${fmtMs(cost.pairedAddedMs)} ms) to a docker run, ratio ${cost.ratio.toFixed(3)}. Second row: the default (views and mount listener) against SYSRUNC_LXCFS_NESTED=false (views, no listener). Third row: sysrunc with views vs plain runc.`,
      ],
    };
  },
};
