// (e) The Debian "dind" system container (sysrunc-test/dind:local: docker.io, entrypoint starts
// dockerd) under --runtime=sysrunc vs the same image under plain runc: start time, and stop time
// with 0, 100 MB and 1 GB of inner images.
//
// Under sysrunc the container's /var/lib/docker is a store volume (a host dir under the manager's
// state dir); `docker stop` syncs it out into the container's overlay upper dir, synchronously,
// inside the runtime's delete, so stop time grows with the inner data. Under plain runc the inner
// dockerd cannot run (no --privileged here: the bounding set lacks CAP_SYS_RESOURCE), so the runc
// side runs the same image with `--entrypoint tini -- sleep infinity` (the process the dind
// entrypoint ends in) and gets the same bytes under /var/lib/docker by `tar -x` of the same tar,
// into its overlay rootfs. Both sides' stop is SIGTERM to tini, which exits at once.
//
// One sample = one container's life: run -d, (load data), stop #1, start #2, stop #2, rm. Each
// iteration runs, per size, a runc life then a sysrunc life; `sync` (untimed) runs before every
// timed step, so writeback of earlier writes (the data load, the last sync-out) is not in it.
import { randomFillSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import { DEBIAN_IMAGE_TAGS, ensureDebianImage } from '../test/rig/debian-images.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, fmtMs, log, makeRow, stats, timeCmd, type Paired, type Row, type TimeOptions } from './lib.ts';

const IMAGE = DEBIAN_IMAGE_TAGS.dind;
/** Measured lives per runtime and size (fewer with --n below it); 2 with --quick. */
export const DIND_MAX_PAIRS = 5;
/** `docker stop -t`: long enough that a stop that hangs shows as such, not as a 10 s kill. */
const STOP_TIMEOUT_S = 30;
const LABEL = 'sysrunc.bench.dind';
const INNER_TAG = 'bench-data:local';

interface Size {
  readonly label: string;
  readonly bytes: number;
}
/** Inner data sizes in MB: SYSRUNC_BENCH_DIND_SIZES (e.g. "0,5000"), default 0, 100 MB and 1 GB. */
export function dindSizes(spec = process.env['SYSRUNC_BENCH_DIND_SIZES'] ?? '0,100,1000'): Size[] {
  return spec.split(',').map((t) => {
    const mb = Number(t.trim());
    if (!Number.isInteger(mb) || mb < 0) throw new Error(`SYSRUNC_BENCH_DIND_SIZES: "${t}" is not a size in MB`);
    return { label: mb === 0 ? '0' : mb >= 1000 ? `${mb / 1000} GB` : `${mb} MB`, bytes: mb * 1_000_000 };
  });
}
const SIZES: readonly Size[] = dindSizes();
/** SYSRUNC_BENCH_DIND_OWNERSHIP=clone: the sysrunc side in copy mode (its volume under the manager's state dir). */
const OWNERSHIP = process.env['SYSRUNC_BENCH_DIND_OWNERSHIP'];

// ------------------------------------------------------------------ the data set

/** 90% of the bytes in 16 MiB files, 10% in 4-16 KiB files (100 per directory); random content. */
const BIG_FILE = 16 << 20;
const SMALL_SHARE = 0.1;
const SMALL_PER_DIR = 100;

interface DataTar {
  readonly path: string;
  readonly files: number;
  readonly contentBytes: number;
  readonly tarBytes: number;
}

/** A minimal ustar writer (regular files and directories, names < 100 bytes, owner 0:0). */
class TarWriter {
  private readonly fd: number;
  private readonly mtime = Math.floor(Date.now() / 1000);
  written = 0;

  constructor(file: string) {
    this.fd = openSync(file, 'w', 0o600);
  }

  dir(name: string): void {
    this.header(name.endsWith('/') ? name : `${name}/`, 0o755, 0, '5');
  }

  file(name: string, data: Buffer): void {
    this.header(name, 0o644, data.length, '0');
    this.write(data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad > 0) this.write(Buffer.alloc(pad));
  }

  close(): void {
    try {
      this.write(Buffer.alloc(1024));
    } finally {
      closeSync(this.fd);
    }
  }

  private header(name: string, mode: number, size: number, type: string): void {
    if (Buffer.byteLength(name) >= 100) throw new Error(`tar name too long: ${name}`);
    const h = Buffer.alloc(512);
    const octal = (v: number, at: number, len: number): void => void h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, at, 'ascii');
    h.write(name, 0, 'utf8');
    octal(mode, 100, 8);
    octal(0, 108, 8);
    octal(0, 116, 8);
    octal(size, 124, 12);
    octal(this.mtime, 136, 12);
    h.write('        ', 148, 'ascii');
    h.write(type, 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    this.write(h);
  }

  private write(b: Buffer): void {
    for (let off = 0; off < b.length; ) off += writeSync(this.fd, b, off, b.length - off);
    this.written += b.length;
  }
}

function buildDataTar(file: string, bytes: number): DataTar {
  const w = new TarWriter(file);
  let files = 0;
  let content = 0;
  try {
    const smallTarget = Math.round(bytes * SMALL_SHARE);
    w.dir('small');
    for (let i = 0, sum = 0; sum < smallTarget; i++) {
      if (i % SMALL_PER_DIR === 0) w.dir(`small/d${String(i / SMALL_PER_DIR).padStart(4, '0')}`);
      const len = Math.min(4096 + ((i * 37) % 12289), smallTarget - sum);
      w.file(`small/d${String(Math.floor(i / SMALL_PER_DIR)).padStart(4, '0')}/f${String(i).padStart(6, '0')}`, randomFillSync(Buffer.alloc(len)));
      sum += len;
      files++;
      content += len;
    }
    w.dir('big');
    const buf = Buffer.alloc(BIG_FILE);
    for (let i = 0; content < bytes; i++) {
      const len = Math.min(BIG_FILE, bytes - content);
      w.file(`big/f${String(i).padStart(4, '0')}`, randomFillSync(buf.subarray(0, len)));
      files++;
      content += len;
    }
  } finally {
    w.close();
  }
  return { path: file, files, contentBytes: content, tarBytes: w.written };
}

// ------------------------------------------------------------------ one container's life

type Runtime = 'runc' | 'sysrunc';

/** What one life measured (ms), plus what it loaded. */
interface Life {
  readonly runtime: Runtime;
  readonly size: string;
  readonly id: string;
  /** docker run -d until it returns (the container is running). */
  readonly run: number;
  /** sysrunc: from the start of run -d until the inner dockerd answers `docker info`. */
  readonly ready?: number;
  /** sysrunc: `docker exec <id> true` once the inner dockerd is up (the cost the ready times include once). */
  readonly execTrue?: number;
  /** Loading the data (docker import inside / tar -x); not a benchmark number. */
  readonly loadMs: number;
  /** du -sb /var/lib/docker after loading. */
  readonly dataRootBytes: number;
  readonly stop1: number;
  /** `sync` right after stop #1: writeback of what the stop wrote (sysrunc: the sync-out). */
  readonly syncAfterStop1: number;
  readonly start2: number;
  readonly ready2?: number;
  readonly stop2: number;
  /** docker rm of the stopped container (sysrunc's volume goes afterwards, by the manager's sweep). */
  readonly rm: number;
  /** sysrunc: the manager's own sync-out at stop #1 / #2 (from its log). */
  readonly syncOut?: readonly SyncOut[];
}

/** One sync-out as the manager logged it: time, entries walked, entries kept as they were (copy mode), bytes copied. */
interface SyncOut {
  readonly ms: number;
  readonly entries: number;
  readonly kept: number;
  readonly bytes: number;
  readonly mode: string;
}

interface Env {
  readonly ctx: BenchContext;
  readonly d: DockerDaemon;
  readonly o: TimeOptions;
  readonly mgrLog: string;
  readonly volumesDir: string;
}

function must(r: ReturnType<typeof timeCmd>, what: string): ReturnType<typeof timeCmd> {
  if (r.exitCode !== 0) throw new Error(`${what}: exit ${r.exitCode}: ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-3).join(' | ')}`);
  return r;
}

function sync(): number {
  const t = performance.now();
  spawnSync('sync', { stdio: 'ignore' });
  return performance.now() - t;
}

/** docker exec <id> <args> with stdin from `input`; throws on failure. */
function execWithInput(e: Env, id: string, args: readonly string[], input: string): number {
  const fd = openSync(input, 'r');
  try {
    const t = performance.now();
    const r = spawnSync(e.d.cli, ['exec', '-i', id, ...args], { env: e.o.env, stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 900_000, killSignal: 'SIGKILL' });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`docker exec -i ${id} ${args.join(' ')} < ${input}: exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    return ms;
  } finally {
    closeSync(fd);
  }
}

/** Waits, polling from inside (every 50 ms), until the inner dockerd answers `docker info`. */
function waitInnerDockerd(e: Env, id: string): void {
  const script = 'i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); [ $i -le 1200 ] || exit 1; sleep 0.05; done';
  must(timeCmd(e.d.cli, ['exec', id, 'sh', '-c', script], e.o), `inner dockerd of ${id} did not answer within ~60 s`);
}

/** Sync-out lines the manager logged for the container, in order. */
function syncOuts(e: Env, id: string): SyncOut[] {
  const out: SyncOut[] = [];
  for (const line of readFileSync(e.mgrLog, 'utf8').split('\n')) {
    if (!line.includes(id) || !line.includes('synced store volumes out')) continue;
    const rec = JSON.parse(line) as { id?: string; volumes?: Array<{ ms: number; entries: number; kept?: number; bytes?: number; mode?: string }> };
    if (rec.id !== id) continue;
    out.push({
      ms: (rec.volumes ?? []).reduce((a, v) => a + v.ms, 0),
      entries: (rec.volumes ?? []).reduce((a, v) => a + v.entries, 0),
      kept: (rec.volumes ?? []).reduce((a, v) => a + (v.kept ?? 0), 0),
      bytes: (rec.volumes ?? []).reduce((a, v) => a + (v.bytes ?? 0), 0),
      mode: [...new Set((rec.volumes ?? []).map((v) => v.mode ?? 'copy'))].join('+'),
    });
  }
  return out;
}

/** Sanity, once per runtime: sysrunc maps the container and gives /var/lib/docker a store volume; runc does neither. */
function verify(e: Env, runtime: Runtime, id: string): void {
  const r = must(timeCmd(e.d.cli, ['exec', id, 'sh', '-c', 'cat /proc/self/uid_map; mkdir -p /var/lib/docker; stat -f -c %T /var/lib/docker'], e.o), `checks in ${id}`);
  const [map = '', fs = ''] = r.stdout.trim().split('\n').map((s) => s.trim());
  const identity = /^0\s+0\s+4294967295$/.test(map);
  if (identity !== (runtime === 'runc') || (fs === 'overlayfs') !== (runtime === 'runc')) {
    throw new Error(`${IMAGE} under --runtime=${runtime}: unexpected uid_map "${map}" or /var/lib/docker on ${fs}`);
  }
}

function timed(e: Env, args: readonly string[], what: string): number {
  sync();
  return must(timeCmd(e.d.cli, args, e.o), what).ms;
}

function life(e: Env, runtime: Runtime, size: Size, data: DataTar | undefined, name: string, check: boolean): Life {
  let id = name;
  try {
    // The runc side: the dind entrypoint's dockerd cannot run there; tini + sleep is what it ends in.
    const runArgs =
      runtime === 'sysrunc'
        ? ['run', '-d', OWNERSHIP ? `--runtime=sysrunc-${OWNERSHIP}` : '--runtime=sysrunc', '--name', name, '--label', `${LABEL}=${e.ctx.tag}`, IMAGE]
        : ['run', '-d', '--runtime=runc', '--name', name, '--label', `${LABEL}=${e.ctx.tag}`, '--entrypoint', 'tini', IMAGE, '-s', '-g', '--', 'sleep', 'infinity'];
    sync();
    const t0 = performance.now();
    const r = must(timeCmd(e.d.cli, runArgs, e.o), `docker run ${runtime}`);
    id = r.stdout.trim();
    let ready: number | undefined;
    let execTrue: number | undefined;
    if (runtime === 'sysrunc') {
      waitInnerDockerd(e, id);
      ready = performance.now() - t0;
      execTrue = must(timeCmd(e.d.cli, ['exec', id, 'true'], e.o), `docker exec ${id} true`).ms;
    }
    if (check) verify(e, runtime, id);
    let loadMs = 0;
    if (data !== undefined) {
      loadMs =
        runtime === 'sysrunc'
          ? execWithInput(e, id, ['docker', 'import', '-', INNER_TAG], data.path)
          : execWithInput(e, id, ['sh', '-c', 'mkdir -p /var/lib/docker/bench-data && exec tar -x -C /var/lib/docker/bench-data'], data.path);
    }
    const du = must(timeCmd(e.d.cli, ['exec', id, 'sh', '-c', 'mkdir -p /var/lib/docker && du -sb /var/lib/docker'], e.o), `du in ${id}`);
    const dataRootBytes = Number(du.stdout.trim().split(/\s+/)[0]);

    const stop = (what: string): number => {
      const ms = timed(e, ['stop', '-t', String(STOP_TIMEOUT_S), id], `docker stop ${runtime} (${what})`);
      if (ms >= STOP_TIMEOUT_S * 1000) throw new Error(`docker stop of ${runtime} ${id} (${what}) ran into the ${STOP_TIMEOUT_S} s kill timeout`);
      return ms;
    };
    const stop1 = stop('#1');
    const syncAfterStop1 = sync();
    const t2 = performance.now();
    const start2 = must(timeCmd(e.d.cli, ['start', id], e.o), `docker start ${runtime}`).ms;
    let ready2: number | undefined;
    if (runtime === 'sysrunc') {
      waitInnerDockerd(e, id);
      ready2 = performance.now() - t2;
    }
    if (runtime === 'sysrunc') {
      // The data is still there after the round trip through the upper dir.
      if (data !== undefined) must(timeCmd(e.d.cli, ['exec', id, 'docker', 'image', 'inspect', INNER_TAG], e.o), `inner image after restart of ${id}`);
    }
    const stop2 = stop('#2');
    const rm = timed(e, ['rm', id], `docker rm ${runtime}`);
    let syncOut: Life['syncOut'];
    if (runtime === 'sysrunc') {
      syncOut = syncOuts(e, id);
      if (syncOut.length !== 2) throw new Error(`expected 2 sync-outs of ${id} in the manager log, found ${syncOut.length}`);
      // The manager sweeps the removed container's volume; let that finish before the next sample.
      for (let i = 0; i < 1200 && existsSync(path.join(e.volumesDir, id)); i++) spawnSync('sleep', ['0.1']);
      if (existsSync(path.join(e.volumesDir, id))) throw new Error(`store volume of ${id} still there 2 min after docker rm`);
    }
    return {
      runtime, size: size.label, id, run: r.ms, ...(ready !== undefined ? { ready, execTrue } : {}), loadMs, dataRootBytes,
      stop1, syncAfterStop1, start2, ...(ready2 !== undefined ? { ready2 } : {}), stop2, rm, ...(syncOut ? { syncOut } : {}),
    };
  } catch (err) {
    timeCmd(e.d.cli, ['rm', '-f', id], e.o);
    throw err;
  }
}

// ------------------------------------------------------------------ the scenario

const sizeText = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

export const dindScenario: Scenario = {
  key: 'dind',
  alias: 'e',
  title: `(e) ${IMAGE}: start, and stop with ${SIZES.map((x) => x.label).join(' / ')} of inner images, --runtime=runc vs --runtime=sysrunc${OWNERSHIP ? ` (--runtime=sysrunc-${OWNERSHIP})` : ''} (only with --only dind)`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const d = await ctx.dockerd();
    const m = await ctx.manager();
    const t = performance.now();
    await ensureDebianImage(d, 'dind');
    const imageS = (performance.now() - t) / 1000;
    log(`(e) sizes ${SIZES.map((x) => x.label).join(', ')}; sysrunc ownership ${OWNERSHIP ?? 'default'}; manager state dir ${m.stateDir} (${spawnSync('stat', ['-f', '-c', '%T', m.stateDir], { encoding: 'utf8' }).stdout.trim()})`);
    const e: Env = { ctx, d, o: { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 300_000 }, mgrLog: m.logPath, volumesDir: path.join(m.stateDir, 'volumes') };
    ctx.cleanup.defer('dind containers', async () => {
      const ps = timeCmd(d.cli, ['ps', '-aq', '--filter', `label=${LABEL}=${ctx.tag}`], e.o);
      const ids = ps.stdout.split('\n').filter(Boolean);
      if (ids.length === 0) return;
      await ctx.reviveManager(); // removing a running sysrunc container runs sysrunc delete
      const r = timeCmd(d.cli, ['rm', '-f', ...ids], e.o);
      if (r.exitCode !== 0) throw new Error(`docker rm -f ${ids.join(' ')}: ${r.stderr.trim()}`);
    });

    const data = new Map<string, DataTar>();
    for (const s of SIZES.filter((x) => x.bytes > 0)) {
      const tt = performance.now();
      const tar = buildDataTar(path.join(ctx.work, `dind-data-${s.bytes}.tar`), s.bytes);
      data.set(s.label, tar);
      log(`(e) data set ${s.label}: ${tar.files} files, ${sizeText(tar.tarBytes)} tar, built in ${((performance.now() - tt) / 1000).toFixed(1)} s`);
    }

    const n = ctx.opts.quick ? Math.min(ctx.opts.n, 2) : Math.min(ctx.opts.n, DIND_MAX_PAIRS);
    const warmup = Math.min(ctx.opts.warmup, 1);
    const lives: Life[] = [];
    for (let i = 0; i < warmup + n; i++) {
      const measured = i >= warmup;
      for (const s of measured ? SIZES : SIZES.slice(0, 1)) {
        for (const rt of ['runc', 'sysrunc'] as const) {
          await checkpoint();
          const l = life(e, rt, s, data.get(s.label), `bench-e-${ctx.tag}-${i}-${s.bytes}-${rt}`, i === 0);
          if (measured) lives.push(l);
        }
      }
      log(`(e) ${measured ? `iteration ${i + 1 - warmup}/${n}` : 'warm-up'} done`);
    }

    const pick = (rt: Runtime, f: (l: Life) => number | undefined, size?: string): number[] =>
      lives.filter((l) => l.runtime === rt && (size === undefined || l.size === size)).map(f).filter((v): v is number => v !== undefined);
    const paired = (f: (l: Life) => number | undefined, size?: string, sysruncOnly = false): Paired => ({
      runc: sysruncOnly ? [] : pick('runc', f, size),
      sysrunc: pick('sysrunc', f, size),
    });
    const runCmd = { runc: `docker run -d --runtime=runc --entrypoint tini ${IMAGE} -s -g -- sleep infinity`, sysrunc: `docker run -d --runtime=sysrunc ${IMAGE}` };
    const noRunc = '(no inner dockerd under runc)';
    const rows: Row[] = [
      makeRow('(e)', 'dind run -d -> running (all sizes)', runCmd, paired((l) => l.run)),
      makeRow('(e)', 'dind run -d -> inner dockerd answers (sysrunc only)', { runc: noRunc, sysrunc: `${runCmd.sysrunc}; docker exec <id> docker info (polled inside)` }, paired((l) => l.ready, undefined, true)),
    ];
    for (const s of SIZES) {
      const stopCmd = { runc: `docker stop -t ${STOP_TIMEOUT_S} <id>`, sysrunc: `docker stop -t ${STOP_TIMEOUT_S} <id>` };
      rows.push(
        makeRow('(e)', `dind ${s.label}: stop #1 (sysrunc: first sync-out)`, stopCmd, paired((l) => l.stop1, s.label)),
        makeRow('(e)', `dind ${s.label}: start #2 -> running`, { runc: 'docker start <id>', sysrunc: 'docker start <id>' }, paired((l) => l.start2, s.label)),
        makeRow('(e)', `dind ${s.label}: start #2 -> inner dockerd answers (sysrunc only)`, { runc: noRunc, sysrunc: 'docker start <id>; docker exec <id> docker info (polled inside)' }, paired((l) => l.ready2, s.label, true)),
        makeRow('(e)', `dind ${s.label}: stop #2 (sysrunc: later sync-out)`, stopCmd, paired((l) => l.stop2, s.label)),
      );
    }

    const med = (v: number[]): string => fmtMs(stats(v).median);
    const notes = [
      `(e) n=${n} lives per runtime and size (+${warmup} warm-up at size 0); runc side: same image, --entrypoint tini -- sleep infinity, data by tar -x into /var/lib/docker (overlay rootfs); sysrunc side: dind entrypoint, data by docker import inside (store volume); sync before every timed step`,
      `(e) "inner dockerd answers" includes one docker exec (docker exec <id> true: median ${fmtMs(stats(pick('sysrunc', (l) => l.execTrue)).median)} ms) and polls every 50 ms`,
      ...SIZES.map((s) => {
        const so = lives.filter((l) => l.runtime === 'sysrunc' && l.size === s.label).map((l) => l.syncOut ?? []);
        return (
          `(e) ${s.label}: /var/lib/docker runc ${sizeText(stats(pick('runc', (l) => l.dataRootBytes, s.label)).median)}, sysrunc ${sizeText(stats(pick('sysrunc', (l) => l.dataRootBytes, s.label)).median)}` +
          `${data.get(s.label) ? ` (${data.get(s.label)?.files} files loaded; load median runc ${med(pick('runc', (l) => l.loadMs, s.label))}, sysrunc ${med(pick('sysrunc', (l) => l.loadMs, s.label))} ms)` : ''}; ` +
          `sysrunc sync-out in the manager (${so[0]?.[0]?.mode ?? '?'} mode; median ms, entries): stop #1 ${med(so.map((x) => x[0]?.ms ?? Number.NaN))} (${so[0]?.[0]?.entries ?? '?'}), stop #2 ${med(so.map((x) => x[1]?.ms ?? Number.NaN))} (kept ${so[0]?.[1]?.kept ?? '?'}, ${sizeText(so[0]?.[1]?.bytes ?? 0)} copied); ` +
          `sync after stop #1 runc ${med(pick('runc', (l) => l.syncAfterStop1, s.label))}, sysrunc ${med(pick('sysrunc', (l) => l.syncAfterStop1, s.label))} ms; ` +
          `docker rm runc ${med(pick('runc', (l) => l.rm, s.label))}, sysrunc ${med(pick('sysrunc', (l) => l.rm, s.label))} ms`
        );
      }),
    ];
    return {
      rows,
      notes,
      extra: {
        image: IMAGE,
        sizes: SIZES,
        ownership: OWNERSHIP ?? null,
        stateDir: m.stateDir,
        stateDirFs: spawnSync('stat', ['-f', '-c', '%T', m.stateDir], { encoding: 'utf8' }).stdout.trim(),
        imageEnsureS: imageS,
        stopTimeoutS: STOP_TIMEOUT_S,
        dataSets: Object.fromEntries([...data].map(([k, v]) => [k, { files: v.files, contentBytes: v.contentBytes, tarBytes: v.tarBytes }])),
        lives,
      },
    };
  },
};
