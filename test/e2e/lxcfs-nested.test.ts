// Issue 21, nested: a system container's inner Docker. lxcfs computes a reader's figures from the
// cgroup of its pid namespace's init and takes the smallest memory limit up the hierarchy. The
// system container's mount listener (src/manager/native/mount-listener.c) binds the outer
// container's lxcfs files over every procfs mounted inside, so an inner `docker run` sees its own
// figures bounded by the outer's, with no binds of its own. Every other mount continues as the
// kernel would do it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS } from '../rig/debian-images.ts';
import { ensureDockerImage } from '../rig/images.ts';
import { mountListenerPaths } from '../../src/spec-transform/lxcfs-nested.ts';
import { startE2ERig, type E2ERig } from './helpers.ts';

let rig: E2ERig;
let outer: string;

/** One line per figure: MemTotal in kB, processors in /proc/cpuinfo. */
const FIGURES = "awk '/^MemTotal:/ {print $2}' /proc/meminfo; grep -c ^processor /proc/cpuinfo";

async function exec(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await rig.docker(['exec', outer, ...args], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function innerFigures(runArgs: readonly string[]): Promise<{ memKiB: number; processors: number }> {
  const r = await exec(['docker', 'run', '--rm', ...runArgs, 'inner:bb', 'sh', '-c', FIGURES]);
  assert.equal(r.exitCode, 0, r.stderr);
  const [memKiB, processors] = r.stdout.trim().split('\n').map(Number);
  return { memKiB: memKiB ?? NaN, processors: processors ?? NaN };
}

async function sh(script: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return exec(['sh', '-c', script]);
}

before(async () => {
  rig = await startE2ERig('e2e-lxcfs-nest', { lxcfs: true });
  await ensureDebianImage(rig.d, 'dind');
  // No CPU limit on the outer container: an inner --cpus then shows in the inner figures.
  outer = (await rig.run(['-d', '-m', '256m', DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  let ready = false;
  for (let i = 0; i < 60 && !ready; i++) {
    ready = (await exec(['docker', 'info'])).exitCode === 0;
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  assert.ok(ready, `the inner dockerd of ${outer} did not answer within 60 s`);
  const tools = ['sh', 'awk', 'grep', 'cat'].map((t) => `ln -s busybox /tmp/bb/bin/${t}`).join(' && ');
  const imported = await sh(`mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ${tools} && tar -C /tmp/bb -c . | docker import - inner:bb`);
  assert.equal(imported.exitCode, 0, imported.stderr);
});

after(async () => {
  if (outer !== undefined) await rig.docker(['rm', '-f', outer], { reject: false });
  await rig?.dispose();
});

test("outer -m 256m: an inner docker run without limits sees the outer container's 256 MiB", async () => {
  assert.equal((await innerFigures([])).memKiB, 256 * 1024);
});

test('an inner docker run -m 64m sees its own 64 MiB', async () => {
  assert.equal((await innerFigures(['-m', '64m'])).memKiB, 64 * 1024);
});

test("an inner docker run -m 512m sees the outer container's 256 MiB, the smaller limit", async () => {
  assert.equal((await innerFigures(['-m', '512m'])).memKiB, 256 * 1024);
});

test('an inner docker run --cpus 1 sees one processor in /proc/cpuinfo', async () => {
  assert.equal((await innerFigures(['--cpus', '1'])).processors, 1);
});

test('docker exec into the system container runs (runc hands each exec its own notify fd)', async () => {
  const r = await exec(['true']);
  assert.equal(r.exitCode, 0, r.stderr);
});

test('a tmpfs mounted by hand inside the system container is a tmpfs', async () => {
  const r = await sh('mkdir -p /tmp/by-hand-tmpfs && mount -t tmpfs -o size=1m none /tmp/by-hand-tmpfs && stat -f -c %T /tmp/by-hand-tmpfs && umount /tmp/by-hand-tmpfs');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'tmpfs');
});

test('a bind mounted by hand inside the system container shows its source', async () => {
  const r = await sh('mkdir -p /tmp/by-hand-bind && mount --bind /etc /tmp/by-hand-bind && test -f /tmp/by-hand-bind/hostname && umount /tmp/by-hand-bind');
  assert.equal(r.exitCode, 0, r.stderr);
});

test("a procfs mounted by hand inside the system container is a procfs with the container's lxcfs figures", async () => {
  const r = await sh("mkdir -p /tmp/by-hand-proc && mount -t proc proc /tmp/by-hand-proc && stat -f -c %T /tmp/by-hand-proc && awk '/^MemTotal:/ {print $2}' /tmp/by-hand-proc/meminfo && umount -R /tmp/by-hand-proc");
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['proc', String(256 * 1024)]);
});

test('a procfs mount by a caller without CAP_SYS_ADMIN is refused with EPERM', async () => {
  const r = await sh('mkdir -p /tmp/no-cap-proc && setpriv --bounding-set -sys_admin --inh-caps -sys_admin mount -t proc proc /tmp/no-cap-proc');
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /permission denied/i);
});

/** The pid of the mount listener serving `socket` (its first argument). */
function listenerPid(socket: string): number {
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (argv[0]?.endsWith('/sysrunc-mount-listener') === true && argv[1] === socket) return Number(name);
  }
  throw new Error(`no mount listener for ${socket}`);
}

test('a killed listener cannot be replaced: mounts inside fail with ENOSYS and docker exec fails until the container is restarted', async () => {
  await ensureDockerImage(rig.d);
  // The container's own process reports each mount's result: exec is what a dead listener breaks.
  const loop = 'mkdir -p /tmp/m; while :; do if mount -t tmpfs none /tmp/m 2>/tmp/err; then umount /tmp/m; echo mounted; else echo "failed: $(cat /tmp/err)"; fi; sleep 0.2; done';
  const id = (await rig.run(['-d', 'bb:local', 'sh', '-c', loop])).stdout.trim();
  try {
    const firstLine = async (prefix: string): Promise<string | undefined> => {
      for (let i = 0; i < 150; i++) {
        const line = (await rig.docker(['logs', id])).stdout.split('\n').find((l) => l.startsWith(prefix));
        if (line !== undefined) return line;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return undefined;
    };
    // With its listener the container mounts (and nothing failed), then the listener is killed.
    assert.equal(await firstLine('mounted'), 'mounted');
    assert.equal((await rig.docker(['logs', id])).stdout.includes('failed:'), false);
    process.kill(listenerPid(mountListenerPaths(path.join(rig.mgr.runDir, 'containers', id)).socket), 'SIGKILL');
    assert.match((await firstLine('failed:')) ?? 'no mount failed within 30 s', /function not implemented/i);
    const exec = await rig.docker(['exec', id, 'true'], { reject: false });
    assert.notEqual(exec.exitCode, 0, 'docker exec succeeded without a listener');
    await rig.docker(['restart', '-t', '1', id]);
    const after = await rig.docker(['exec', id, 'sh', '-c', 'mount -t tmpfs none /tmp/m && umount /tmp/m'], { reject: false });
    assert.equal(after.exitCode, 0, after.stderr);
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
});
