// (f) The cost of the rootfs ownership modes (issue 5): `SYSRUNC_OWNERSHIP=clone` (a metacopy
//     overlay clone of the image layers under the manager's state dir, chowned by the container's id
//     offset: metadata-only copy-ups, so its cost grows with the file count) against
//     `SYSRUNC_OWNERSHIP=idmap` (idmapped layers, no writes), on bb:local and on the 1 GB / 21k-file
//     image of (d), with plain runc as the reference.
//
// Per iteration and image, in this order, each a fresh container:
//   docker run --rm <image> true                  runc, idmap, clone
//   docker create <image> sleep 1000000; then      runc, idmap, clone
//     docker start   (first start: clone made + chowned)
//     docker stop -t 0   (the upper dir's chown reverted, the clone kept)
//     docker start   (restart: the kept clone reused, only the upper dir chowned)
//     docker rm -f
// Every timed step is followed by an untimed `sync`, so the writeback of one step (a clone's
// copy-ups) does not land in the next sample; its duration is kept as that step's writeback. After
// a clone container's end (run --rm, rm -f) the bench also waits, untimed, until its clone is gone:
// the manager removes it synchronously (the sweep after docker rm), and while it does, it answers
// no other container's requests.
// The sysrunc containers run under the `sysrunc-timed` runtime (bin/sysrunc behind a logging sh
// wrapper), so sysrunc's own create/delete times come out of the same samples; the wrapper's own
// overhead per runtime call is measured and reported. A clone run's `--rm` removes its clone in the
// final delete; a stopped container keeps it until `docker rm` (the manager's sweep removes it then).
//
// Expensive (each 1 GB clone chowns ~21k entries), so it runs at most OWNERSHIP_MAX_N iterations
// (fewer with a smaller --n; 3 with --quick, which skips it unless named in --only) after one
// warm-up: ~3.5 min.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { ensureImage1g, IMAGE_1G, type Image1g } from './image-1g.ts';
import { checkpoint, fmtMs, log, makeRow, mustTime, renderTable, stats, timeCmd, type Row, type TimeOptions } from './lib.ts';

export const OWNERSHIP_MAX_N = 8;
const BB = 'bb:local';
const IMAGES = [BB, IMAGE_1G] as const;
const SHORT: Record<string, string> = { [BB]: 'bb', [IMAGE_1G]: '1g' };
const MODES = ['idmap', 'clone'] as const;
type Mode = (typeof MODES)[number];
type Side = 'runc' | Mode;
const SIDES: readonly Side[] = ['runc', ...MODES];
const STEPS = ['run', 'start1', 'stop', 'restart', 'rm'] as const;
type Step = (typeof STEPS)[number];
const STEP_LABEL: Record<Step, string> = { run: 'run --rm', start1: 'first start', stop: 'stop', restart: 'restart', rm: 'rm -f' };
/** Steps that get a table row (rm -f only goes to the JSON). */
const ROW_STEPS: readonly Step[] = ['run', 'start1', 'stop', 'restart'];
const TIMED_RUNTIME = 'sysrunc-timed';
const LONG_CMD = ['sleep', '1000000'];

type Samples = Record<Side, Record<Step, number[]>>;

interface Ids {
  /** `docker run --rm` containers, per mode. */
  readonly run: Record<Mode, string[]>;
  /** docker create / start / stop / start / rm containers, per mode. */
  readonly life: Record<Mode, string[]>;
}

const emptySamples = (): Samples =>
  Object.fromEntries(SIDES.map((s) => [s, Object.fromEntries(STEPS.map((st) => [st, [] as number[]]))])) as unknown as Samples;
const emptyIds = (): Ids => ({ run: { idmap: [], clone: [] }, life: { idmap: [], clone: [] } });

function runtimeArgs(side: Side): string[] {
  return side === 'runc' ? ['--runtime=runc'] : [`--runtime=${TIMED_RUNTIME}-${side}`];
}

function dockerOut(d: DockerDaemon, args: readonly string[], o: TimeOptions): string {
  const r = timeCmd(d.cli, args, o);
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout.trim();
}

/** Sanity: each mode really maps the container and shows it its files as root's; runc does not map. */
function checkModes(d: DockerDaemon, image: string, o: TimeOptions): void {
  for (const side of SIDES) {
    const out = dockerOut(d, ['run', '--rm', ...runtimeArgs(side), image, 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u:%g /bin/busybox'], o);
    const identity = /^\s*0\s+0\s+4294967295\s*$/m.test(out);
    if (identity !== (side === 'runc') || !/^0:0$/m.test(out)) {
      throw new Error(`${image}: ${side} sanity check failed (want ${side === 'runc' ? 'an identity' : 'a mapped'} uid_map and a root-owned /bin/busybox): ${out}`);
    }
  }
}

interface Call {
  readonly sub: string;
  readonly start: bigint;
  readonly ms: number;
}

/** The sysrunc-timed log, per container id (its last argument), in call order. */
function readCalls(file: string): Map<string, Call[]> {
  const calls = new Map<string, Call[]>();
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    const [s0, e0, sub, , last] = line.split(' ');
    if (s0 === undefined || e0 === undefined || sub === undefined || last === undefined) continue;
    const list = calls.get(last) ?? [];
    list.push({ sub, start: BigInt(s0), ms: Number((BigInt(e0) - BigInt(s0)) / 1000n) / 1000 });
    calls.set(last, list);
  }
  for (const list of calls.values()) list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return calls;
}

const sumOf = (calls: readonly Call[], sub: string): number => calls.filter((c) => c.sub === sub).reduce((a, c) => a + c.ms, 0);

/** sysrunc's own calls, by what they belong to. */
const CALL_KEYS = ['run create', 'run delete', 'start1 create', 'stop delete', 'restart create', 'rm delete'] as const;
type CallKey = (typeof CALL_KEYS)[number];
const CALL_LABEL: Record<CallKey, string> = {
  'run create': 'run --rm: create',
  'run delete': 'run --rm: delete',
  'start1 create': 'first start: create',
  'stop delete': 'stop: delete',
  'restart create': 'restart: create',
  'rm delete': 'rm -f: delete',
};

function perCall(calls: Map<string, Call[]>, ids: Ids): { byKey: Record<Mode, Record<CallKey, number[]>>; callsPerRun: number[] } {
  const byKey = Object.fromEntries(MODES.map((m) => [m, Object.fromEntries(CALL_KEYS.map((k) => [k, [] as number[]]))])) as unknown as Record<Mode, Record<CallKey, number[]>>;
  const callsPerRun: number[] = [];
  for (const mode of MODES) {
    for (const id of ids.run[mode]) {
      const list = calls.get(id);
      if (list === undefined) throw new Error(`${TIMED_RUNTIME} logged no calls for container ${id}`);
      callsPerRun.push(list.length);
      byKey[mode]['run create'].push(sumOf(list, 'create'));
      byKey[mode]['run delete'].push(sumOf(list, 'delete'));
    }
    for (const id of ids.life[mode]) {
      const list = calls.get(id) ?? [];
      // first start (create, start), stop (delete...), restart (create, start), rm -f (delete...)
      const second = list.findIndex((c, i) => c.sub === 'create' && list.slice(0, i).some((p) => p.sub === 'create'));
      if (second < 0) throw new Error(`${TIMED_RUNTIME} logged no second create for container ${id}: ${list.map((c) => c.sub).join(' ')}`);
      const before = list.slice(0, second);
      const after = list.slice(second);
      byKey[mode]['start1 create'].push(sumOf(before, 'create'));
      byKey[mode]['stop delete'].push(sumOf(before, 'delete'));
      byKey[mode]['restart create'].push(sumOf(after, 'create'));
      byKey[mode]['rm delete'].push(sumOf(after, 'delete'));
    }
  }
  return { byKey, callsPerRun };
}

/** Each sysrunc container was registered by the manager in the mode it asked for (every start). */
function checkRegistrations(logText: string, ids: Ids): void {
  const modes = new Map<string, string[]>();
  for (const line of logText.split('\n')) {
    if (!line.includes('"registered container"')) continue;
    try {
      const j = JSON.parse(line) as { id?: string; ownership?: { mode?: string } };
      if (j.id !== undefined) modes.set(j.id, [...(modes.get(j.id) ?? []), j.ownership?.mode ?? 'none']);
    } catch {
      // not a log record
    }
  }
  for (const mode of MODES) {
    for (const [kind, list, starts] of [['run --rm', ids.run[mode], 1], ['create/start', ids.life[mode], 2]] as const) {
      for (const id of list) {
        const got = modes.get(id) ?? [];
        if (got.length !== starts || got.some((m) => m !== mode)) {
          throw new Error(`container ${id} (${kind}, SYSRUNC_OWNERSHIP=${mode}): the manager registered it ${got.length}x as [${got.join(', ')}], want ${starts}x ${mode}`);
        }
      }
    }
  }
}

/** Median per-call overhead of the sysrunc-timed wrapper itself: its sh script around `true`, minus `true`. */
function wrapperOverheadMs(ctx: BenchContext): number {
  const wrapper = path.join(ctx.work, TIMED_RUNTIME);
  const calib = path.join(ctx.work, 'ownership-wrapper-calibration');
  const calibLog = path.join(ctx.work, 'ownership-wrapper-calibration.log');
  writeFileSync(calib, readFileSync(wrapper, 'utf8').replace(ctx.sysrunc, '/bin/true').replace(ctx.timedRuntimeLog, calibLog), { mode: 0o755 });
  const o = { scratch: ctx.work };
  const diffs: number[] = [];
  for (let i = 0; i < 21; i++) diffs.push(mustTime(calib, ['create', 'x'], o) - mustTime('/bin/true', ['create', 'x'], o));
  rmSync(calib, { force: true });
  rmSync(calibLog, { force: true });
  return stats(diffs).median;
}

const cell = (xs: readonly number[]): string => {
  const s = stats(xs);
  return `${fmtMs(s.median)} (${fmtMs(s.p90)})`;
};
const ratio = (a: readonly number[], b: readonly number[]): string => {
  const r = stats(a).median / stats(b).median;
  return Number.isFinite(r) ? r.toFixed(2) : 'n/a';
};
const added = (a: readonly number[], b: readonly number[]): string => {
  const v = stats(a).median - stats(b).median;
  return `${v >= 0 ? '+' : ''}${fmtMs(v)}`;
};

function commands(image: string, step: Step, mode: Mode): Row['commands'] {
  const what = (side: Side): string => {
    const rt = runtimeArgs(side).join(' ');
    if (step === 'run') return `docker run --rm ${rt} ${image} true`;
    const life = `docker create ${rt} ${image} ${LONG_CMD.join(' ')}; docker start; docker stop -t 0; docker start; docker rm -f`;
    return `${life} (timed: ${STEP_LABEL[step]})`;
  };
  return { runc: what('runc'), sysrunc: what(mode) };
}

export const ownershipScenario: Scenario = {
  key: 'ownership',
  alias: 'f',
  title: `(f) rootfs ownership: SYSRUNC_OWNERSHIP=clone vs idmap (and runc), ${BB} and ${IMAGE_1G}: run --rm, first start, stop, restart`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const n = ctx.opts.quick ? Math.min(ctx.opts.n, 3) : Math.min(ctx.opts.n, OWNERSHIP_MAX_N);
    const warmup = Math.min(ctx.opts.warmup, 1);
    const d = await ctx.dockerd();
    const m = await ctx.manager();
    const clonesDir = path.join(m.stateDir, 'clones');
    await ensureDockerImage(d, BB);
    const image1g: Image1g = await ensureImage1g(d, await ctx.busyboxRootfs());
    const o: TimeOptions = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 600_000 };
    for (const image of IMAGES) checkModes(d, image, o);
    const overheadMs = wrapperOverheadMs(ctx);

    const samples = new Map<string, Samples>(IMAGES.map((img) => [img, emptySamples()]));
    /** Duration of the untimed `sync` right after each step. */
    const writeback = new Map<string, Samples>(IMAGES.map((img) => [img, emptySamples()]));
    const settle = (): number => mustTime('sync', [], { scratch: ctx.work });
    const ids = new Map<string, Ids>(IMAGES.map((img) => [img, emptyIds()]));
    /** Untimed wait after a clone container's end until the manager removed its clone. */
    const goneWait = new Map<string, { run: number[]; rm: number[] }>(IMAGES.map((img) => [img, { run: [], rm: [] }]));
    const waitCloneGone = (id: string): number => {
      const t0 = performance.now();
      const there = (): boolean => existsSync(path.join(clonesDir, id)) || existsSync(path.join(clonesDir, `${id}.shifted.json`));
      for (let k = 0; k < 300 && there(); k++) spawnSync('sleep', ['0.05']);
      return performance.now() - t0;
    };
    const kept = new Map<string, { kept: number; of: number }>(IMAGES.map((img) => [img, { kept: 0, of: 0 }]));
    const idmapClones: string[] = [];
    const notKept: string[] = [];
    /** Every sysrunc container of the loop, warm-up included. */
    const everyId = new Set<string>();
    const cloneDisk: Record<string, { kib: number; inodes: number }> = {};
    const total = warmup + n;
    log(`(f) ${total} iterations (${warmup} warm-up), each: ${IMAGES.join(' + ')} x (run --rm, create/start/stop/start/rm) x (runc, idmap, clone)`);
    for (let i = 0; i < total; i++) {
      const measured = i >= warmup;
      for (const image of IMAGES) {
        const acc = samples.get(image) as Samples;
        const acc2 = ids.get(image) as Ids;
        for (const side of SIDES) {
          await checkpoint();
          const cidfile = path.join(ctx.work, `ownership-cid-${i}`);
          rmSync(cidfile, { force: true });
          const ms = mustTime(d.cli, ['run', '--rm', '--cidfile', cidfile, ...runtimeArgs(side), image, 'true'], o);
          const wb = settle();
          const id = readFileSync(cidfile, 'utf8').trim();
          rmSync(cidfile, { force: true });
          if (side !== 'runc') everyId.add(id);
          const gone = side === 'clone' ? waitCloneGone(id) : 0;
          if (measured && side === 'clone') goneWait.get(image)?.run.push(gone);
          if (!measured) continue;
          acc[side].run.push(ms);
          (writeback.get(image) as Samples)[side].run.push(wb);
          if (side !== 'runc') acc2.run[side].push(id);
        }
        for (const side of SIDES) {
          await checkpoint();
          const id = dockerOut(d, ['create', ...runtimeArgs(side), image, ...LONG_CMD], o);
          if (side !== 'runc') everyId.add(id);
          settle();
          const t: Partial<Record<Step, number>> = {};
          const wb: Partial<Record<Step, number>> = {};
          const step = (name: Step, args: readonly string[]): void => {
            t[name] = mustTime(d.cli, args, o);
            wb[name] = settle();
          };
          try {
            step('start1', ['start', id]);
            step('stop', ['stop', '-t', '0', id]);
            if (side !== 'runc') {
              const cloneThere = existsSync(path.join(clonesDir, id));
              if (side === 'clone') {
                const k = kept.get(image) as { kept: number; of: number };
                k.of++;
                if (cloneThere) k.kept++;
                else notKept.push(id);
                if (cloneThere && cloneDisk[image] === undefined) {
                  const du = (flag: string): number => Number(spawnSync('du', ['-s', flag, path.join(clonesDir, id)], { encoding: 'utf8' }).stdout.split('\t')[0]);
                  cloneDisk[image] = { kib: du('-k'), inodes: du('--inodes') };
                }
              } else if (cloneThere) idmapClones.push(id);
            }
            step('restart', ['start', id]);
          } finally {
            step('rm', ['rm', '-f', id]);
          }
          const gone = side === 'clone' ? waitCloneGone(id) : 0;
          if (measured && side === 'clone') goneWait.get(image)?.rm.push(gone);
          if (!measured) continue;
          for (const name of ['start1', 'stop', 'restart', 'rm'] as const) {
            acc[side][name].push(t[name] as number);
            (writeback.get(image) as Samples)[side][name].push(wb[name] as number);
          }
          if (side !== 'runc') acc2.life[side].push(id);
        }
      }
      if ((i + 1) % Math.max(1, Math.ceil(total / 4)) === 0 || i + 1 === total) log(`(f) ${i + 1}/${total} iterations`);
    }

    // Late deletes (the shim's, after the client returned) and the manager's sweep of removed clones.
    let leftClones: string[] = [];
    for (let waited = 0; waited < 10; waited++) {
      spawnSync('sleep', ['1']);
      leftClones = (existsSync(clonesDir) ? readdirSync(clonesDir) : []).filter((name) => everyId.has(name.split('.')[0] ?? ''));
      if (leftClones.length === 0 && waited >= 1) break;
    }
    const calls = readCalls(ctx.timedRuntimeLog);
    const logText = m.log();
    // The manager's orphan sweep releasing one of these containers before docker rm (keep: false)
    // means a stop lost what a stop keeps (the clone).
    const swept = new Set<string>();
    for (const line of logText.split('\n')) {
      if (!line.includes('"released a container that no longer exists"')) continue;
      try {
        const j = JSON.parse(line) as { id?: string; stopped?: boolean };
        if (j.id !== undefined && j.stopped === false && everyId.has(j.id)) swept.add(j.id);
      } catch {
        // not a log record
      }
    }
    const rows: Row[] = [];
    const ratioLines: string[][] = [];
    const callLines: string[][] = [];
    const wbLines: string[][] = [];
    const perImage: Record<string, unknown> = {};
    for (const image of IMAGES) {
      const s = samples.get(image) as Samples;
      const imgIds = ids.get(image) as Ids;
      checkRegistrations(logText, imgIds);
      const pc = perCall(calls, imgIds);
      for (const step of ROW_STEPS) {
        for (const mode of MODES) {
          rows.push(makeRow('(f)', `${SHORT[image]} ${STEP_LABEL[step]} ${mode}`, commands(image, step, mode), { runc: s.runc[step], sysrunc: s[mode][step] }));
        }
        ratioLines.push([`${SHORT[image]} ${STEP_LABEL[step]}`, cell(s.runc[step]), cell(s.idmap[step]), cell(s.clone[step]), ratio(s.clone[step], s.idmap[step]), added(s.clone[step], s.idmap[step])]);
      }
      for (const key of CALL_KEYS) {
        const a = pc.byKey.idmap[key];
        const b = pc.byKey.clone[key];
        callLines.push([`${SHORT[image]} ${CALL_LABEL[key]}`, cell(a), cell(b), ratio(b, a), added(b, a)]);
      }
      wbLines.push([SHORT[image] as string, ...(['run', 'start1', 'stop', 'restart'] as const).flatMap((st) => MODES.map((mode) => fmtMs(stats((writeback.get(image) as Samples)[mode][st]).median)))]);
      perImage[image] = { samples: s, cloneGoneWaitMs: goneWait.get(image), writeback: writeback.get(image), ids: imgIds, sysruncCalls: pc.byKey, callsPerRunRm: pc.callsPerRun, clonesKeptAfterStop: kept.get(image), cloneDisk: cloneDisk[image] ?? null };
    }
    const callsPerRun = stats([...IMAGES].flatMap((img) => (perImage[img] as { callsPerRunRm: number[] }).callsPerRunRm)).median;
    const growth = (mode: Mode, key: CallKey): string => {
      const v = (img: string): number => stats(perCall(calls, ids.get(img) as Ids).byKey[mode][key]).median;
      const g = v(IMAGE_1G) - v(BB);
      return `${g >= 0 ? '+' : ''}${fmtMs(g)}`;
    };
    const notes = [
      `(f) docker level, ms, median (p90), n=${n} per cell, ${SHORT[BB]} = ${BB}, 1g = ${IMAGE_1G} (${Math.round(image1g.bytes / 1e6)} MB, ${image1g.files} extra files):`,
      renderTable(['image step', 'runc', 'idmap', 'clone', 'clone/idmap', 'clone - idmap'], ratioLines, new Set([1, 2, 3, 4, 5])),
      `(f) sysrunc's own calls (${TIMED_RUNTIME} log), ms, median (p90); a call's time excludes the wrapper:`,
      renderTable(['image call', 'idmap', 'clone', 'clone/idmap', 'clone - idmap'], callLines, new Set([1, 2, 3, 4])),
      `(f) untimed sync right after each step (writeback the step left behind), ms, median:`,
      renderTable(['image', ...(['run --rm', 'start', 'stop', 'restart'] as const).flatMap((st) => MODES.map((mode) => `${st} ${mode}`))], wbLines, new Set([1, 2, 3, 4, 5, 6, 7, 8])),
      `(f) growth bb -> 1g of sysrunc's first-start create: idmap ${growth('idmap', 'start1 create')} ms, clone ${growth('clone', 'start1 create')} ms; ` +
        `of its restart create: idmap ${growth('idmap', 'restart create')} ms, clone ${growth('clone', 'restart create')} ms`,
      `(f) the sysrunc side runs under ${TIMED_RUNTIME}: its wrapper adds ~${fmtMs(overheadMs)} ms per runtime call (median), ${callsPerRun} calls per docker run --rm, ` +
        `so the ratios to runc are ~${fmtMs(overheadMs * callsPerRun)} ms high; clone/idmap is unaffected`,
      `(f) kept clone present after docker stop: ${IMAGES.map((img) => `${SHORT[img]} ${kept.get(img)?.kept}/${kept.get(img)?.of}`).join(', ')}` +
        (cloneDisk[IMAGE_1G] === undefined ? '' : `; the 1g clone takes ${Math.round(cloneDisk[IMAGE_1G].kib / 1024)} MiB, ${cloneDisk[IMAGE_1G].inodes} inodes on disk`),
      `(f) untimed wait until the manager removed the clone, ms, median (p90): after run --rm ${IMAGES.map((img) => `${SHORT[img]} ${cell(goneWait.get(img)?.run ?? [])}`).join(', ')}; ` +
        `after rm -f (the sweep, every 1 s here) ${IMAGES.map((img) => `${SHORT[img]} ${cell(goneWait.get(img)?.rm ?? [])}`).join(', ')}`,
      ...(notKept.length > 0
        ? [`(f) ODD: no clone after docker stop for ${notKept.map((id) => `${id.slice(0, 12)}${swept.has(id) ? ' (released by the orphan sweep)' : ''}`).join(', ')}`]
        : []),
      ...(swept.size > 0
        ? [
            `(f) ODD: the manager's orphan sweep released ${swept.size} of these containers while not stopped, i.e. inside a delete, between runc's ` +
              `delete and sysrunc's release (keep: false: at a docker stop that discards the clone): ${[...swept].map((id) => id.slice(0, 12)).join(', ')}`,
          ]
        : []),
      ...(idmapClones.length > 0 ? [`(f) ODD: idmap containers had a clone dir after stop: ${idmapClones.join(', ')}`] : []),
      ...(leftClones.length > 0 ? [`(f) ODD: clone state left in ${clonesDir} ~10 s after docker rm / run --rm: ${leftClones.join(', ')}`] : []),
    ];
    return { rows, notes, extra: { n, warmup, image: image1g, wrapperOverheadMs: overheadMs, perImage, leftClones, notKept, sweptWhileLive: [...swept] } };
  },
};
