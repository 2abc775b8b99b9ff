// The ~1 GB image of scenario (d), built once and cached: the busybox rootfs plus
//   /usr/share/bench-small/dNNN/fNNN  20,000 small files (256 B - 4 KiB), so any per-file work
//                                      (a chown of the rootfs) would show;
//   /var/lib/bench-big/fNNNN           1,000 files of 1 MiB of random data, so any per-byte work
//                                      (a copy of the rootfs) would show.
// The tar is cached in /var/cache/sysrunc-bench; the docker image lives in the bench dockerd's
// data root (/var/lib/sysrunc-test/sysrunc-bench/data), which survives between bench runs.
import { randomBytes, randomFillSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import { log } from './lib.ts';

export const IMAGE_1G = 'bench-1g:local';
/** Bump when the contents below change: the cached tar and image are rebuilt. */
const LAYOUT = 1;
const SMALL_DIRS = 100;
const SMALL_PER_DIR = 200;
const BIG_FILES = 1000;
const BIG_SIZE = 1 << 20;
const LABEL = 'sysrunc.bench.layout';
const ENV_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const CACHE_DIR = process.env['SYSRUNC_BENCH_CACHE'] ?? '/var/cache/sysrunc-bench';

export interface Image1g {
  readonly tag: string;
  readonly id: string;
  readonly files: number;
  readonly bytes: number;
  /** Seconds spent building the tar / importing it in this run (0 when cached). */
  readonly buildS: number;
  readonly importS: number;
}

function sh(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
}

function buildTar(busyboxRootfs: string, out: string): void {
  const stage = `${out}.stage-${process.pid}`;
  rmSync(stage, { recursive: true, force: true });
  try {
    sh('cp', ['-a', '--', busyboxRootfs, stage]);
    rmSync(path.join(stage, '.sysrunc-rig-stamp'), { force: true });
    for (let d = 0; d < SMALL_DIRS; d++) {
      const dir = path.join(stage, 'usr/share/bench-small', `d${String(d).padStart(3, '0')}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < SMALL_PER_DIR; f++) {
        const fd = openSync(path.join(dir, `f${String(f).padStart(3, '0')}`), 'w', 0o644);
        writeSync(fd, randomBytes(256 + ((d * SMALL_PER_DIR + f) * 37) % 3841));
        closeSync(fd);
      }
    }
    const bigDir = path.join(stage, 'var/lib/bench-big');
    mkdirSync(bigDir, { recursive: true });
    const buf = Buffer.alloc(BIG_SIZE);
    for (let f = 0; f < BIG_FILES; f++) {
      randomFillSync(buf);
      const fd = openSync(path.join(bigDir, `f${String(f).padStart(4, '0')}`), 'w', 0o644);
      writeSync(fd, buf);
      closeSync(fd);
    }
    const tmp = `${out}.tmp-${process.pid}`;
    sh('tar', ['--numeric-owner', '--sort=name', '-C', stage, '-cf', tmp, '.']);
    renameSync(tmp, out);
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(`${out}.tmp-${process.pid}`, { force: true });
  }
}

/** Imports the 1 GB image into `d` unless it already has it at the current layout; builds the tar first if needed. */
export async function ensureImage1g(d: DockerDaemon, busyboxRootfs: string): Promise<Image1g> {
  let buildS = 0;
  let importS = 0;
  const have = await d.docker(['image', 'inspect', '--format', `{{.Id}} {{index .Config.Labels "${LABEL}"}}`, IMAGE_1G], { reject: false });
  const [haveId, haveLayout] = have.stdout.trim().split(' ');
  let id = haveId ?? '';
  if (have.exitCode !== 0 || haveLayout !== String(LAYOUT)) {
    if (have.exitCode === 0) await d.docker(['rmi', '-f', IMAGE_1G], { reject: false });
    const tar = path.join(CACHE_DIR, `bench-1g-v${LAYOUT}.tar`);
    if (!existsSync(tar)) {
      mkdirSync(CACHE_DIR, { recursive: true });
      log(`building ${tar} (${SMALL_DIRS * SMALL_PER_DIR} small files + ${BIG_FILES} x ${BIG_SIZE >> 20} MiB; once)`);
      const t = performance.now();
      buildTar(busyboxRootfs, tar);
      buildS = (performance.now() - t) / 1000;
    }
    log(`importing ${tar} as ${IMAGE_1G} (once per dockerd data root)`);
    const t = performance.now();
    const r = await d.docker(
      ['import', '--change', 'CMD ["sh"]', '--change', `ENV ${ENV_PATH}`, '--change', `LABEL ${LABEL}=${LAYOUT}`, tar, IMAGE_1G],
      { timeoutMs: 900_000 },
    );
    importS = (performance.now() - t) / 1000;
    id = r.stdout.trim();
  }
  const size = await d.docker(['image', 'inspect', '--format', '{{.Size}}', IMAGE_1G]);
  return { tag: IMAGE_1G, id, files: SMALL_DIRS * SMALL_PER_DIR + BIG_FILES, bytes: Number(size.stdout.trim()), buildS, importS };
}

/** Size of the cached tar, if any (for the report). */
export function cachedTarBytes(): number | undefined {
  const tar = path.join(CACHE_DIR, `bench-1g-v${LAYOUT}.tar`);
  return existsSync(tar) ? statSync(tar).size : undefined;
}
