// Issue 25: exactly one overlay writes to a container's upper dir. sysrunc's overlay (idmapped
// layers, or the clone) replaces dockerd's at dockerd's own rootfs path while the container runs,
// so dockerd's operations on a running container go through the container's file system; the
// rig's dispose fails the file if the kernel warned about a shared upper/work dir meanwhile.
// Each check runs the same container under runc too: content must match, ownership is as the
// README documents (the engine's path shows the container's host ids while it runs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inspect, leftovers, NOTHING_LEFT, parseIdMap, startE2ERig, type E2ERig } from './helpers.ts';
import { readMountInfo } from '../../src/host/mount.ts';

let rig: E2ERig;
let scratch: string;

before(async () => {
  rig = await startE2ERig('e2e-engine-overlay');
  scratch = mkdtempSync('/var/tmp/sysrunc-e2e-engine-overlay-');
});

after(async () => {
  await rig.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

const MAKE = 'echo made-inside > /made; mkdir /etc/newdir; rm /etc/hostname.orig 2>/dev/null; exec sleep 1000';
// The operator's way to choose clone ownership (a second runtime, test/e2e/helpers.ts SETTING_RUNTIMES):
// the container's environment may not choose it. The last --runtime wins.
const CLONE = ['--runtime=sysrunc-clone'];

/** A running container of bb:local that made /made and /etc/newdir; waits until it did. */
async function running(runtime: 'runc' | 'sysrunc', extra: readonly string[] = []): Promise<string> {
  const id = (await rig.docker(['run', '-d', `--runtime=${runtime}`, ...extra, 'bb:local', 'sh', '-c', MAKE])).stdout.trim();
  for (let i = 0; i < 100; i++) {
    if ((await rig.docker(['exec', id, 'test', '-d', '/etc/newdir'], { reject: false })).exitCode === 0) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`container ${id} did not make its files`);
}

async function hostRootOf(id: string): Promise<number> {
  const map = parseIdMap((await rig.docker(['exec', id, 'cat', '/proc/self/uid_map'])).stdout);
  const root = map.find((m) => m.containerID === 0)?.hostID;
  assert.ok(root !== undefined && root > 0, JSON.stringify(map));
  return root;
}

/** Overlay mounts (by superblock) whose upper dir is the container's, or an idmapped view of it. */
function overlaysAt(mountpoint: string): Array<{ dev: string; superOptions: string }> {
  return readMountInfo().filter((m) => m.mountPoint === mountpoint && m.fsType === 'overlay').map((m) => ({ dev: m.dev, superOptions: m.superOptions }));
}

for (const [mode, extra] of [['idmap', []], ['clone', CLONE]] as const) {
  test(`${mode}: a running container's root and dockerd's rootfs path are one overlay, and dockerd's own is gone`, async () => {
    const id = await running('sysrunc', extra);
    try {
      const merged = await inspect(rig.d, id, '{{.GraphDriver.Data.MergedDir}}');
      const pid = await inspect(rig.d, id, '{{.State.Pid}}');
      const atEngine = overlaysAt(merged);
      assert.equal(atEngine.length, 1, JSON.stringify(atEngine));
      // The container's root is the same superblock as dockerd's path.
      assert.equal(statSync(`/proc/${pid}/root/made`).dev, statSync(path.join(merged, 'made')).dev);
      assert.equal(readFileSync(path.join(merged, 'made'), 'utf8'), 'made-inside\n');
    } finally {
      await rig.docker(['rm', '-f', id]);
    }
  });
}

test('docker cp out of a running container gives the same file as runc; dockerd\'s path shows the container\'s host ids', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    for (const [rt, id] of Object.entries(ids)) await rig.docker(['cp', `${id}:/made`, path.join(scratch, `out-${rt}`)]);
    assert.equal(readFileSync(path.join(scratch, 'out-sysrunc'), 'utf8'), readFileSync(path.join(scratch, 'out-runc'), 'utf8'));
    // A file of the image's layers (not copied up): the idmapped lower layers under sysrunc's overlay.
    for (const [rt, id] of Object.entries(ids)) await rig.docker(['cp', `${id}:/bin/busybox`, path.join(scratch, `busybox-${rt}`)]);
    assert.ok(readFileSync(path.join(scratch, 'busybox-sysrunc')).equals(readFileSync(path.join(scratch, 'busybox-runc'))));
    // The docker CLI writes what it copies out as its caller, whatever the archive says.
    assert.equal(statSync(path.join(scratch, 'out-sysrunc')).uid, statSync(path.join(scratch, 'out-runc')).uid);
    const merged = await inspect(rig.d, ids.sysrunc, '{{.GraphDriver.Data.MergedDir}}');
    assert.equal(statSync(path.join(merged, 'made')).uid, await hostRootOf(ids.sysrunc));
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
  }
});

test('docker cp into a running container: the container reads the same content as under runc; host root\'s files show as nobody inside', async () => {
  const file = path.join(scratch, 'in.txt');
  writeFileSync(file, 'copied-in\n');
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    const seen: Record<string, string> = {};
    for (const [rt, id] of Object.entries(ids)) {
      await rig.docker(['cp', file, `${id}:/etc/in.txt`]);
      seen[rt] = (await rig.docker(['exec', id, 'sh', '-c', 'cat /etc/in.txt; stat -c %u /etc/in.txt'])).stdout;
    }
    assert.equal(seen['runc'], 'copied-in\n0');
    assert.equal(seen['sysrunc'], 'copied-in\n65534');
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
  }
});

test('docker diff of a running container lists every change runc\'s lists', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    const runc = (await rig.docker(['diff', ids.runc])).stdout.trim().split('\n');
    const sysrunc = new Set((await rig.docker(['diff', ids.sysrunc])).stdout.trim().split('\n'));
    assert.deepEqual(runc.filter((l) => !sysrunc.has(l)), []);
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
  }
});

test('docker commit of a running container: the image has the container\'s files, owned as under runc', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    const listing: Record<string, string> = {};
    for (const [rt, id] of Object.entries(ids)) {
      await rig.docker(['commit', id, `engine-overlay-${rt}:1`]);
      listing[rt] = (await rig.docker(['run', '--rm', '--runtime=runc', `engine-overlay-${rt}:1`, 'sh', '-c', 'cat /made; stat -c "%n %u:%g %a" /made /etc/newdir /bin/busybox /etc/passwd'])).stdout;
    }
    assert.equal(listing['sysrunc'], listing['runc']);
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
    await rig.docker(['rmi', 'engine-overlay-runc:1', 'engine-overlay-sysrunc:1'], { reject: false });
  }
});

test('docker export of a running container has the same files and contents as under runc', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    const names: Record<string, string[]> = {};
    for (const [rt, id] of Object.entries(ids)) {
      const tar = path.join(scratch, `export-${rt}.tar`);
      await rig.docker(['export', '-o', tar, id]);
      names[rt] = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).split('\n').sort();
      assert.equal(execFileSync('tar', ['-xOf', tar, 'made'], { encoding: 'utf8' }), 'made-inside\n');
    }
    assert.deepEqual(names['sysrunc'], names['runc']);
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
  }
});

test('a stopped container: docker diff and docker cp out are exactly as under runc (dockerd\'s own overlay again)', async () => {
  const ids = { runc: await running('runc'), sysrunc: await running('sysrunc') };
  try {
    await rig.docker(['stop', '-t', '1', ids.runc, ids.sysrunc]);
    const diff = async (id: string) => (await rig.docker(['diff', id])).stdout.trim().split('\n').sort();
    assert.deepEqual(await diff(ids.sysrunc), await diff(ids.runc));
    await rig.docker(['cp', `${ids.sysrunc}:/made`, path.join(scratch, 'stopped-out')]);
    assert.equal(statSync(path.join(scratch, 'stopped-out')).uid, 0);
  } finally {
    await rig.docker(['rm', '-f', ids.runc, ids.sysrunc]);
  }
});

test('restart: sysrunc\'s overlay replaces dockerd\'s again, the container\'s files survived, nothing is left after rm', async () => {
  const id = await running('sysrunc');
  await rig.docker(['restart', '-t', '1', id]);
  const merged = await inspect(rig.d, id, '{{.GraphDriver.Data.MergedDir}}');
  assert.equal((await rig.docker(['exec', id, 'cat', '/made'])).stdout, 'made-inside');
  assert.equal(overlaysAt(merged).length, 1);
  await rig.docker(['rm', '-f', id]);
  assert.deepEqual(overlaysAt(merged), []);
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});
