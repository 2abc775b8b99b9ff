// Issue 18 and 25 under rootful podman (containers/storage's overlay driver, conmon): the container
// lifecycle through sysrunc, and podman's own view of a running container (cp, diff), compared
// with runc. podman --rm mounts the rootfs overlay volatile, which sysrunc's overlay must carry.
// Private store (--root/--runroot under the rig dirs); this machine needs the ulimits (no
// CAP_SYS_RESOURCE in the bounding set).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { startPodmanRig, type PodmanRig } from '../rig/podman.ts';
import { leftovers, NOTHING_LEFT } from './helpers.ts';
import { assertNoSharedUpperWarning, kernelLogMark } from './kernel-log.ts';

let mgr: TestManager;
let pm: PodmanRig;
let scratch: string;
let kmsgMark: number;

before(async () => {
  kmsgMark = kernelLogMark();
  mgr = await startTestManager({ name: 'e2e-podman' });
  try {
    pm = await startPodmanRig('e2e-podman', { runtime: SYSRUNC, runtimeEnv: mgr.env });
  } catch (err) {
    await mgr.dispose();
    throw err;
  }
  scratch = mkdtempSync('/var/tmp/sysrunc-e2e-podman-');
});

after(async () => {
  try {
    await pm.dispose();
  } finally {
    await mgr.dispose();
    rmSync(scratch, { recursive: true, force: true });
  }
  assertNoSharedUpperWarning(kmsgMark, 'podman e2e');
});

const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'none'];
const run = (args: readonly string[], runtime?: 'runc') => pm.podman(['run', ...(runtime ? ['--runtime', runtime] : []), ...LIMITS, ...args]);
const MAKE = 'echo made-inside > /made; mkdir /etc/newdir; exec sleep 1000';

async function running(runtime?: 'runc'): Promise<string> {
  const id = (await run(['-d', 'bb:local', 'sh', '-c', MAKE], runtime)).stdout.trim();
  for (let i = 0; i < 100; i++) {
    if ((await pm.podman(['exec', id, 'test', '-d', '/etc/newdir'], { reject: false })).exitCode === 0) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`container ${id} did not make its files`);
}

test('podman run --rm: the container runs as an unprivileged root and is gone afterwards', async () => {
  const r = await run(['--rm', 'bb:local', 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
  const [uid, map] = r.stdout.split('\n');
  assert.equal(uid, '0');
  assert.match(map ?? '', /^\s*0\s+[1-9]\d*\s+\d+$/);
  assert.equal((await pm.podman(['ps', '-aq'])).stdout, '');
});

test('podman run -d, logs, exec, stop, rm: each works, and the manager holds nothing afterwards', async () => {
  const id = (await run(['-d', 'bb:local', 'sh', '-c', 'echo started; exec sleep 1000'])).stdout.trim();
  for (let i = 0; i < 50 && (await pm.podman(['logs', id])).stdout === ''; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await pm.podman(['logs', id])).stdout, 'started');
  assert.equal((await pm.podman(['exec', id, 'stat', '-c', '%u:%g', '/bin/busybox'])).stdout, '0:0');
  await pm.podman(['stop', '-t', '1', id]);
  assert.equal((await pm.podman(['inspect', '-f', '{{.State.Status}}', id])).stdout, 'exited');
  await pm.podman(['rm', id]);
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});

test('podman cp in and out of a running container: the same content as under runc', async () => {
  const file = path.join(scratch, 'in.txt');
  writeFileSync(file, 'copied-in\n');
  const ids = { runc: await running('runc'), sysrunc: await running() };
  try {
    for (const [rt, id] of Object.entries(ids)) {
      await pm.podman(['cp', file, `${id}:/etc/in.txt`]);
      assert.equal((await pm.podman(['exec', id, 'cat', '/etc/in.txt'])).stdout, 'copied-in', rt);
      await pm.podman(['cp', `${id}:/made`, path.join(scratch, `out-${rt}`)]);
    }
    assert.equal(readFileSync(path.join(scratch, 'out-sysrunc'), 'utf8'), readFileSync(path.join(scratch, 'out-runc'), 'utf8'));
  } finally {
    await pm.podman(['rm', '-f', '-t', '0', ids.runc, ids.sysrunc]);
  }
});

test('podman diff of a running container lists every change runc\'s lists', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running() };
  try {
    const runc = (await pm.podman(['diff', ids.runc])).stdout.trim().split('\n');
    const sysrunc = new Set((await pm.podman(['diff', ids.sysrunc])).stdout.trim().split('\n'));
    assert.deepEqual(runc.filter((l) => !sysrunc.has(l)), []);
  } finally {
    await pm.podman(['rm', '-f', '-t', '0', ids.runc, ids.sysrunc]);
  }
});
