// (a) `runc run` vs `sysrunc run` of the same busybox bundle (one copy each), container `true`,
// foreground: the time covers create + start + wait + delete (and sysrunc's release).
import path from 'node:path';
import { makeBundle } from '../test/rig/images.ts';
import { bins } from '../test/rig/paths.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { interleave, makeRow, mustTime, progressLog } from './lib.ts';

export const runScenario: Scenario = {
  key: 'run',
  alias: 'a',
  title: '(a) runc run vs sysrunc run, busybox bundle, `true`',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const rootfs = await ctx.busyboxRootfs();
    const env = await ctx.sysruncEnv();
    const bundles = {
      runc: (await makeBundle(path.join(ctx.work, 'run-runc'), rootfs, ['true'])).bundle,
      sysrunc: (await makeBundle(path.join(ctx.work, 'run-sysrunc'), rootfs, ['true'])).bundle,
    };
    // Distinct ids every time: runc's default cgroup is /<id>, and a reused id would hide leaks.
    const id = (rt: string, i: number): string => `bench-a-${rt}-${ctx.tag}-${i}`;
    const o = { scratch: ctx.work, env };
    const samples = await interleave(
      ctx.opts.n,
      ctx.opts.warmup,
      (i) => mustTime(bins.runc, ['--root', ctx.roots.runc, 'run', '--bundle', bundles.runc, id('runc', i)], o),
      (i) => mustTime(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'run', '--bundle', bundles.sysrunc, id('sysrunc', i)], o),
      progressLog('(a) run'),
    );
    return {
      rows: [
        makeRow('(a)', 'run `true`', { runc: 'runc --root R run --bundle B <id>', sysrunc: 'bin/sysrunc --root R run --bundle B <id>' }, samples),
      ],
    };
  },
};
