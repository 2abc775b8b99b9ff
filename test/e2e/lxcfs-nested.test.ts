// Issue 21, nested: a system container's inner Docker. lxcfs computes a reader's figures from the
// cgroup of its pid namespace's init and takes the smallest memory limit up the hierarchy, so the
// outer container's lxcfs files, bound into an inner container, show the inner container's own
// figures bounded by the outer's. An inner `docker run` without such binds mounts a fresh procfs
// (the kernel's figures): README, "The container's own /proc", says why that is not automatic yet.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS } from '../rig/debian-images.ts';
import { startE2ERig, type E2ERig } from './helpers.ts';

let rig: E2ERig;
let outer: string;

/** The binds an inner `docker run` takes to read the outer container's lxcfs files. */
const LXCFS_BINDS = ['/proc/meminfo', '/proc/cpuinfo', '/proc/stat', '/proc/uptime', '/sys/devices/system/cpu/online'].flatMap((f) => ['-v', `${f}:${f}:ro`]);
/** One line per figure: MemTotal in kB, nproc, processors in /proc/cpuinfo. */
const FIGURES = "awk '/^MemTotal:/ {print $2}' /proc/meminfo; nproc; grep -c ^processor /proc/cpuinfo";

async function exec(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await rig.docker(['exec', outer, ...args], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function innerFigures(runArgs: readonly string[]): Promise<number[]> {
  const r = await exec(['docker', 'run', '--rm', ...runArgs, 'inner:bb', 'sh', '-c', FIGURES]);
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim().split('\n').map(Number);
}

before(async () => {
  rig = await startE2ERig('e2e-lxcfs-nest', { lxcfs: true });
  await ensureDebianImage(rig.d, 'dind');
  outer = (await rig.run(['-d', '-m', '256m', '--cpus', '1', DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  let ready = false;
  for (let i = 0; i < 60 && !ready; i++) {
    ready = (await exec(['docker', 'info'])).exitCode === 0;
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  assert.ok(ready, `the inner dockerd of ${outer} did not answer within 60 s`);
  const tools = ['sh', 'awk', 'grep', 'nproc'].map((t) => `ln -s busybox /tmp/bb/bin/${t}`).join(' && ');
  const imported = await exec(['sh', '-c', `mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ${tools} && tar -C /tmp/bb -c . | docker import - inner:bb`]);
  assert.equal(imported.exitCode, 0, imported.stderr);
});

after(async () => {
  if (outer !== undefined) await rig.docker(['rm', '-f', outer], { reject: false });
  await rig?.dispose();
});

test("outer -m 256m --cpus 1: an inner docker run without limits that binds the outer's lxcfs files sees 256 MiB and 1 CPU", async () => {
  assert.deepEqual(await innerFigures(LXCFS_BINDS), [256 * 1024, 1, 1]);
});

test('an inner docker run -m 64m with those binds sees its own 64 MiB', async () => {
  assert.deepEqual((await innerFigures(['-m', '64m', ...LXCFS_BINDS]))[0], 64 * 1024);
});

test("an inner docker run -m 512m with those binds sees the outer container's 256 MiB, the smaller limit", async () => {
  assert.deepEqual((await innerFigures(['-m', '512m', ...LXCFS_BINDS]))[0], 256 * 1024);
});
