// (c) `docker run --rm --runtime=runc bb:local true` vs `--runtime=sysrunc` on a private dockerd,
//     then each runtime call's time (bench/per-call.ts).
// (d) the same with a ~1 GB, ~21k-file image: sysrunc's rootfs is a new overlay over idmapped
//     layers, so its cost must not grow with the rootfs (no chown, no copy).
//
// When both run, they run as ONE loop, four samples per iteration (runc bb, sysrunc bb, runc 1g,
// sysrunc 1g), so the two are compared within the same time window; the note gives the growth of
// sysrunc's added time per iteration, (sysrunc_1g - runc_1g) - (sysrunc_bb - runc_bb).
//
// (d)'s target is judged on a quieter measurement of the only part that could scale with the
// rootfs: the wall time of sysrunc's own calls inside the daemon (create, start, delete...), taken
// by the `sysrunc-timed` runtime (a logging sh wrapper around bin/sysrunc), bb vs 1g alternating:
// the median per-run total may grow by at most 30 ms. A docker-level difference carries dockerd's
// and containerd's noise (hundreds of ms on a busy machine); a chown of the 21k entries (~0.1 s
// here with a hot cache) or a copy of 1 GB (seconds) would show in sysrunc's calls.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { ensureImage1g, IMAGE_1G, type Image1g } from './image-1g.ts';
import { checkpoint, fmtMs, log, makeRow, mustTime, quantile, stats, timeCmd, type Paired, type Row } from './lib.ts';
import { perCallComparison } from './per-call.ts';

export const DOCKER_TARGET_RATIO = 1.25;
/** Median growth of sysrunc's per-run call time from bb:local to the 1 GB image that still counts as "no growth". */
export const SIZE_GROWTH_MAX_MS = 30;
const BB = 'bb:local';

/** Sanity: --runtime=sysrunc really maps the container into a user namespace, runc does not. */
function checkRuntimes(ctx: BenchContext, d: DockerDaemon, image: string): void {
  const o = { scratch: ctx.work, env: ctx.dockerEnv(d) };
  for (const runtime of ['runc', 'sysrunc']) {
    const r = timeCmd(d.cli, ['run', '--rm', `--runtime=${runtime}`, image, 'cat', '/proc/self/uid_map'], o);
    const identity = /^\s*0\s+0\s+4294967295\s*$/.test(r.stdout);
    if (r.exitCode !== 0 || identity !== (runtime === 'runc')) {
      throw new Error(`${image}: --runtime=${runtime} uid_map check failed (exit ${r.exitCode}): ${r.stdout.trim()} ${r.stderr.trim()}`);
    }
  }
}

/** warmup + n iterations; each iteration one runc and one sysrunc sample per image, in order. */
async function dockerLoop(ctx: BenchContext, d: DockerDaemon, images: readonly string[]): Promise<Map<string, Paired>> {
  const o = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 120_000 };
  const run = (runtime: string, image: string): number => mustTime(d.cli, ['run', '--rm', `--runtime=${runtime}`, image, 'true'], o);
  const out = new Map<string, Paired>(images.map((img) => [img, { runc: [], sysrunc: [] }]));
  const total = ctx.opts.warmup + ctx.opts.n;
  for (let i = 0; i < total; i++) {
    await checkpoint();
    for (const image of images) {
      const a = run('runc', image);
      const b = run('sysrunc', image);
      if (i < ctx.opts.warmup) continue;
      out.get(image)?.runc.push(a);
      out.get(image)?.sysrunc.push(b);
    }
    if ((i + 1) % Math.max(1, Math.ceil(total / 4)) === 0 || i + 1 === total) log(`docker ${images.join(' + ')}: ${i + 1}/${total} iterations`);
  }
  return out;
}

interface PerCall {
  /** Per docker run: the sum of all sysrunc calls for its container. */
  readonly total: number[];
  /** Per docker run and subcommand (calls of one subcommand summed, e.g. the two deletes). */
  readonly bySub: Record<string, number[]>;
}

/**
 * `k` docker runs per image (after one warm-up each), images alternating, through the
 * sysrunc-timed runtime; returns the sysrunc call times grouped by image.
 */
async function perCallTimes(ctx: BenchContext, d: DockerDaemon, images: readonly string[], k: number): Promise<Map<string, PerCall>> {
  const o = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 120_000 };
  const runs: Array<{ image: string; id: string }> = [];
  rmSync(ctx.timedRuntimeLog, { force: true });
  for (let i = 0; i <= k; i++) {
    await checkpoint();
    for (const image of images) {
      const cidfile = path.join(ctx.work, `cid-${i}-${images.indexOf(image)}`);
      mustTime(d.cli, ['run', '--rm', '--cidfile', cidfile, '--runtime=sysrunc-timed', image, 'true'], o);
      const id = readFileSync(cidfile, 'utf8').trim();
      rmSync(cidfile, { force: true });
      if (i > 0) runs.push({ image, id });
    }
  }
  spawnSync('sleep', ['1']); // a delete the shim issues after the client returned
  const calls = new Map<string, Array<{ sub: string; ms: number }>>();
  for (const line of readFileSync(ctx.timedRuntimeLog, 'utf8').split('\n')) {
    const [s0, e0, sub, , last] = line.split(' ');
    if (s0 === undefined || e0 === undefined || sub === undefined || last === undefined) continue;
    const list = calls.get(last) ?? [];
    list.push({ sub, ms: Number((BigInt(e0) - BigInt(s0)) / 1000n) / 1000 });
    calls.set(last, list);
  }
  const out = new Map<string, PerCall>(images.map((img) => [img, { total: [], bySub: {} }]));
  for (const run of runs) {
    const list = calls.get(run.id);
    const acc = out.get(run.image);
    if (list === undefined || acc === undefined) throw new Error(`sysrunc-timed logged no calls for container ${run.id}`);
    acc.total.push(list.reduce((a, c) => a + c.ms, 0));
    const bySub: Record<string, number> = {};
    for (const c of list) bySub[c.sub] = (bySub[c.sub] ?? 0) + c.ms;
    for (const [sub, ms] of Object.entries(bySub)) (acc.bySub[sub] ??= []).push(ms);
  }
  return out;
}

/** (d)'s verdict from per-call times: the growth of the median per-run total. */
async function judgeGrowth(ctx: BenchContext, d: DockerDaemon, image: Image1g): Promise<{ growthMs: number; notes: string[]; perCall: Record<string, unknown> }> {
  const k = ctx.opts.quick ? 3 : ctx.opts.n;
  log(`(d) sysrunc call times inside dockerd, ${BB} vs ${IMAGE_1G}, ${k} runs each`);
  const per = await perCallTimes(ctx, d, [BB, IMAGE_1G], k);
  const bb = per.get(BB) as PerCall;
  const big = per.get(IMAGE_1G) as PerCall;
  const growthMs = stats(big.total).median - stats(bb.total).median;
  const subs = [...new Set([...Object.keys(bb.bySub), ...Object.keys(big.bySub)])];
  const detail = subs
    .map((sub) => `${sub} ${fmtMs(stats(bb.bySub[sub] ?? []).median)} -> ${fmtMs(stats(big.bySub[sub] ?? []).median)}`)
    .join(', ');
  return {
    growthMs,
    notes: [
      `(d) sysrunc's own calls per docker run (sysrunc-timed runtime, n=${k} each, medians, ms, ${BB} -> ${IMAGE_1G}): ` +
        `total ${fmtMs(stats(bb.total).median)} -> ${fmtMs(stats(big.total).median)} (growth ${growthMs >= 0 ? '+' : ''}${fmtMs(growthMs)} ms); ${detail}`,
    ],
    perCall: { k, image: image.tag, [BB]: bb, [IMAGE_1G]: big },
  };
}

const commands = (image: string): Row['commands'] => ({
  runc: `docker run --rm --runtime=runc ${image} true`,
  sysrunc: `docker run --rm --runtime=sysrunc ${image} true`,
});

/** (d)'s result when (c) ran in the same loop; picked up by docker1gScenario. */
let joint: { row: Row; notes: string[]; image: Image1g; perCall: Record<string, unknown>; growth: number[] } | undefined;

export const dockerScenario: Scenario = {
  key: 'docker',
  alias: 'c',
  title: `(c) docker run --rm ${BB} true, --runtime=runc vs --runtime=sysrunc`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    await ensureDockerImage(d, BB);
    checkRuntimes(ctx, d, BB);
    const with1g = ctx.selected.has('docker-1g');
    let image: Image1g | undefined;
    if (with1g) {
      image = await ensureImage1g(d, await ctx.busyboxRootfs());
      checkRuntimes(ctx, d, IMAGE_1G);
      log(`(c) and (d) run as one loop: ${BB} and ${IMAGE_1G} alternate`);
    }
    const samples = await dockerLoop(ctx, d, with1g ? [BB, IMAGE_1G] : [BB]);
    const c = makeRow('(c)', `docker run ${BB}`, commands(BB), samples.get(BB) as Paired, { kind: 'ratio', max: DOCKER_TARGET_RATIO });
    if (with1g && image !== undefined) {
      const s1g = samples.get(IMAGE_1G) as Paired;
      const sbb = samples.get(BB) as Paired;
      const growth = s1g.sysrunc.map((v, i) => v - (s1g.runc[i] ?? Number.NaN) - ((sbb.sysrunc[i] ?? Number.NaN) - (sbb.runc[i] ?? Number.NaN)));
      const g = stats(growth);
      const verdict = await judgeGrowth(ctx, d, image);
      const dRow = makeRow('(d)', 'docker run 1 GB image', commands(IMAGE_1G), s1g, {
        kind: 'custom',
        text: `sysrunc calls grow <= ${SIZE_GROWTH_MAX_MS} ms`,
        met: verdict.growthMs <= SIZE_GROWTH_MAX_MS,
      });
      const notes = [
        `(d) vs (c), same loop: sysrunc's added time (docker level) grows by ${fmtMs(g.median)} ms (median of per-iteration growth; p10..p90 ` +
          `${fmtMs(quantile(growth, 0.1))}..${fmtMs(g.p90)} ms) from ${BB} to ${IMAGE_1G} (${Math.round(image.bytes / 1e6)} MB, ${image.files} extra files); ` +
          `ratio ${dRow.ratio.toFixed(2)} vs ${c.ratio.toFixed(2)}; runc median ${fmtMs(dRow.runc.median)} vs ${fmtMs(c.runc.median)} ms`,
        ...verdict.notes,
      ];
      joint = { row: dRow, notes, image, perCall: verdict.perCall, growth };
    }
    // Where the added time is, call by call (runc and sysrunc behind the same timing wrapper).
    const perCall = await perCallComparison(ctx, d, BB, ctx.opts.quick ? 3 : ctx.opts.n);
    return { rows: [c], notes: [`(c) per runtime call, medians of ${perCall.k} docker runs each, same logging sh wrapper around runc and sysrunc:\n${perCall.table}`], extra: { perCall: perCall.samples } };
  },
};

export const docker1gScenario: Scenario = {
  key: 'docker-1g',
  alias: 'd',
  title: `(d) docker run --rm ${IMAGE_1G} true (1 GB, 21k files), --runtime=runc vs --runtime=sysrunc`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    if (joint !== undefined) {
      const j = joint;
      joint = undefined;
      return { rows: [j.row], notes: j.notes, extra: { image: j.image, growthTargetMs: SIZE_GROWTH_MAX_MS, dockerLevelGrowth: j.growth, perCall: j.perCall } };
    }
    const d = await ctx.dockerd();
    const image = await ensureImage1g(d, await ctx.busyboxRootfs());
    checkRuntimes(ctx, d, IMAGE_1G);
    await ensureDockerImage(d, BB);
    const samples = (await dockerLoop(ctx, d, [IMAGE_1G])).get(IMAGE_1G) as Paired;
    const verdict = await judgeGrowth(ctx, d, image);
    const row = makeRow('(d)', 'docker run 1 GB image', commands(IMAGE_1G), samples, {
      kind: 'custom',
      text: `sysrunc calls grow <= ${SIZE_GROWTH_MAX_MS} ms`,
      met: verdict.growthMs <= SIZE_GROWTH_MAX_MS,
    });
    return {
      rows: [row],
      notes: ['(d) ran without (c), so there is no docker-level comparison with bb:local', ...verdict.notes],
      extra: { image, growthTargetMs: SIZE_GROWTH_MAX_MS, perCall: verdict.perCall },
    };
  },
};
