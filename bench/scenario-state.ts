// (b) `runc state` vs `sysrunc state` of a created container. sysrunc's state is the launcher's
// fast path (bin/sysrunc, POSIX sh, execs runc), so the added time is the sh start-up and scan.
import path from 'node:path';
import { makeBundle } from '../test/rig/images.ts';
import { bins } from '../test/rig/paths.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { interleave, makeRow, mustTime, progressLog, timeCmd } from './lib.ts';

export const STATE_TARGET_ADDED_MS = 15;

export const stateScenario: Scenario = {
  key: 'state',
  alias: 'b',
  title: '(b) runc state vs sysrunc state of a created container',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const rootfs = await ctx.busyboxRootfs();
    const env = await ctx.sysruncEnv();
    const o = { scratch: ctx.work, env };
    const ids = { runc: `bench-b-runc-${ctx.tag}`, sysrunc: `bench-b-sysrunc-${ctx.tag}` };
    const bundles = {
      runc: (await makeBundle(path.join(ctx.work, 'state-runc'), rootfs, ['sleep', '1000'])).bundle,
      sysrunc: (await makeBundle(path.join(ctx.work, 'state-sysrunc'), rootfs, ['sleep', '1000'])).bundle,
    };
    mustTime(bins.runc, ['--root', ctx.roots.runc, 'create', '--bundle', bundles.runc, ids.runc], o);
    try {
      mustTime(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'create', '--bundle', bundles.sysrunc, ids.sysrunc], o);
      try {
        const state = (bin: string, root: string, id: string): number => {
          const r = timeCmd(bin, ['--root', root, 'state', id], o);
          if (r.exitCode !== 0 || (JSON.parse(r.stdout) as { status?: string }).status !== 'created') {
            throw new Error(`${bin} state ${id}: exit ${r.exitCode}: ${r.stdout}${r.stderr}`);
          }
          return r.ms;
        };
        const samples = await interleave(
          ctx.opts.n,
          ctx.opts.warmup,
          () => state(bins.runc, ctx.roots.runc, ids.runc),
          () => state(ctx.sysrunc, ctx.roots.sysrunc, ids.sysrunc),
          progressLog('(b) state'),
        );
        return {
          rows: [
            makeRow(
              '(b)',
              'state (created)',
              { runc: 'runc --root R state <id>', sysrunc: 'bin/sysrunc --root R state <id>' },
              samples,
              { kind: 'addedMs', max: STATE_TARGET_ADDED_MS },
            ),
          ],
        };
      } finally {
        timeCmd(ctx.sysrunc, ['--root', ctx.roots.sysrunc, 'delete', '--force', ids.sysrunc], o);
      }
    } finally {
      timeCmd(bins.runc, ['--root', ctx.roots.runc, 'delete', '--force', ids.runc], o);
    }
  },
};
