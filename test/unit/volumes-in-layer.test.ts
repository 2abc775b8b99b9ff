// In-layer store volumes (issue 13): the data stays in the container's upper dir with the image's
// ids, the container gets an idmapped view of it, and a stop moves no data. Crash cases run the
// volume manager in a child process that a SYSRUNC_TEST_FAULT fault point kills with SIGKILL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMountPoint } from '../../src/host/mount.ts';
import { VolumeManager } from '../../src/manager/volumes/volume-manager.ts';
import { closeSync, openSync } from 'node:fs';
import { readSidecarEntries } from '../../src/manager/volumes/sidecar.ts';
import { scratch } from '../fixtures/volumes/env.ts';
import { volumeManagerAt, type TestVolumeManager, TEST_ID_BASE as BASE, TEST_IDS as IDS, DOCKER_STORE as DOCKER, CRASH_CHILD as CHILD } from '../fixtures/volumes/manager.ts';
import { manifest, withoutBlocks } from '../fixtures/volumes/manifest.ts';
import { makeSpecialTree } from '../fixtures/volumes/tree.ts';


const s = scratch('volumes-in-layer');
const mgrs: VolumeManager[] = [];
const tmpfsMounts: string[] = [];
after(async () => {
  // Views left attached by a test that failed half-way must not outlive it.
  for (const vm of mgrs) for (const c of vm.list()) await vm.destroyVolumes(c.id).catch(() => undefined);
  for (const m of tmpfsMounts.reverse()) spawnSync('umount', ['-l', m]);
  s.cleanup();
});

function manager(dir = s.sub('mgr')): TestVolumeManager {
  const m = volumeManagerAt(dir);
  mgrs.push(m.vm);
  return m;
}

/** A container: its merged rootfs (here a plain dir with the image's /var/lib/docker) and an empty upper dir. */
function container(opts: { image?: boolean } = {}): { rootfs: string; upperdir: string } {
  const rootfs = s.sub('image');
  if (opts.image !== false) makeSpecialTree(path.join(rootfs, DOCKER), { overlayMarkers: true });
  else mkdirSync(path.join(rootfs, 'var/lib'), { recursive: true });
  return { rootfs, upperdir: s.sub('upper') };
}

const OPAQUE = 'trusted.overlay.opaque';

test('createVolumes with an upper dir copies the image content into the layer unshifted and mounts an idmapped view of it', async () => {
  const { rootfs, upperdir } = container();
  chmodSync(path.join(rootfs, 'var/lib'), 0o750);
  chownSync(path.join(rootfs, 'var/lib'), 0, 42);
  const { vm, root } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  const lib = statSync(path.join(upperdir, 'var/lib'));
  assert.deepEqual([lib.mode & 0o7777, lib.uid, lib.gid], [0o750, 0, 42], 'parents made in the layer look like the image');
  const view = mounts[0]!.source;
  assert.equal(path.dirname(view), path.join(root, 'c1'));
  assert.ok(isMountPoint(view), 'the volume is a mount');
  const inLayer = path.join(upperdir, DOCKER);
  assert.deepEqual(
    withoutBlocks(manifest(inLayer, { skipXattrs: [OPAQUE] })),
    withoutBlocks(manifest(path.join(rootfs, DOCKER), { skipXattrs: [OPAQUE] })),
  );
  assert.equal(statSync(inLayer).uid, 0, 'host root owns it at rest');
  assert.equal(statSync(view).uid, BASE, 'the container root owns it through the view');
  assert.equal(vm.list()[0]?.volumes[0]?.layer?.upperdir, upperdir);
});

test('a write through the view lands in the layer with the image id', async () => {
  const { rootfs, upperdir } = container({ image: false });
  const { vm } = manager();
  const view = (await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  writeFileSync(path.join(upperdir, DOCKER, 'f'), 'x');
  chownSync(path.join(view, 'f'), BASE + 7, BASE + 8);
  const st = statSync(path.join(upperdir, DOCKER, 'f'));
  assert.deepEqual([st.uid, st.gid], [7, 8]);
});

test('syncOut of an in-layer volume moves no data: it detaches the view and writes the whiteouts and xattrs to the sidecar', async () => {
  const { rootfs, upperdir } = container();
  const { vm } = manager();
  const view = (await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  const before = manifest(path.join(upperdir, DOCKER));
  const out = await vm.syncOut('c1', { rootfs: s.sub('unmounted-merged'), intoUpperdir: true });
  assert.equal(out.volumes[0]?.mode, 'in-layer');
  assert.equal(out.volumes[0]?.bytes, 0);
  assert.equal(out.volumes[0]?.sidecarWhiteouts, 2);
  assert.equal(isMountPoint(view), false);
  assert.deepEqual(manifest(path.join(upperdir, DOCKER)), before, 'the data did not move');
  const fd = openSync(path.join(upperdir, 'var/lib/.docker.sysrunc-meta.json'), 'r');
  const entries = [...readSidecarEntries(fd)];
  closeSync(fd);
  assert.ok(entries.some((e) => e.kind === 'xattrs' && e.path.length === 0), 'the opaque mark of the store dir itself');
});

test('createVolumes after a stop adopts the directory in the layer as it is and attaches a new view', async () => {
  const { rootfs, upperdir } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  await vm.syncOut('c1', { rootfs, intoUpperdir: true });
  writeFileSync(path.join(upperdir, DOCKER, 'written-while-running'), 'kept');
  const again = (await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  assert.ok(isMountPoint(again));
  assert.equal(readFileSync(path.join(again, 'written-while-running'), 'utf8'), 'kept');
});

test('createVolumes with a different upper dir than the recorded, still existing layer is refused', async () => {
  const { rootfs, upperdir } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  await vm.syncOut('c1', { rootfs, intoUpperdir: true });
  await assert.rejects(
    vm.createVolumes('c1', { rootfs, upperdir: s.sub('other-upper'), mountpoints: [DOCKER], ...IDS }),
    /lives in the layer .* which this start does not use/,
  );
  await assert.rejects(vm.createVolumes('c1', { rootfs, mountpoints: [DOCKER], ...IDS }), /does not mount with idmapped ownership/);
});

test('destroyVolumes detaches the view and leaves the data in the layer, whose owner removes it', async () => {
  const { rootfs, upperdir } = container();
  const { vm, root } = manager();
  await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  await vm.destroyVolumes('c1');
  assert.deepEqual(readdirSync(root), []);
  assert.ok(existsSync(path.join(upperdir, DOCKER, 'overlay2')), 'the data in the layer is untouched');
  assert.deepEqual(vm.list(), []);
});

test('an upper dir on overlayfs falls back to copy mode: the data goes to a volume under the root', async () => {
  const { rootfs } = container();
  const upperdir = s.overlay('upper-on-overlay', s.sub('lower'));
  const { vm } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  assert.equal(vm.list()[0]?.volumes[0]?.layer, undefined);
  assert.equal(isMountPoint(mounts[0]!.source), false);
  assert.equal(statSync(path.join(mounts[0]!.source, 'overlay2')).uid, BASE, 'shifted copy in the volume');
  assert.equal(existsSync(path.join(upperdir, DOCKER)), false);
});

function runChild(m: { root: string; stateFile: string }, req: object, steps: string[]): { signal: NodeJS.Signals | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ ...m, id: 'c1', req, steps, owner: IDS })], { encoding: 'utf8' });
  if (r.signal === null && r.status !== 0) throw new Error(`crash child failed: ${r.stderr}`);
  return { signal: r.signal, out: r.stdout + r.stderr };
}

test('a manager killed -9 before the sync-in rename leaves no half volume in the layer; recover and the next create finish it', async () => {
  const { rootfs, upperdir } = container();
  const m = manager();
  const req = { rootfs, upperdir, mountpoints: [DOCKER], ...IDS };
  const r = runChild(m, req, ['fault:layer-sync-in:before-rename', 'create']);
  assert.equal(r.signal, 'SIGKILL', r.out);
  assert.equal(existsSync(path.join(upperdir, DOCKER)), false, 'nothing at the store path');
  assert.ok(existsSync(path.join(upperdir, 'var/lib/.docker.sysrunc-in')), 'the half copy is hidden beside it');
  const { vm } = manager(m.dir);
  await vm.recover();
  assert.equal(existsSync(path.join(upperdir, 'var/lib/.docker.sysrunc-in')), false);
  assert.deepEqual(vm.list(), []);
  await vm.createVolumes('c1', req);
  assert.deepEqual(
    withoutBlocks(manifest(path.join(upperdir, DOCKER), { skipXattrs: [OPAQUE] })),
    withoutBlocks(manifest(path.join(rootfs, DOCKER), { skipXattrs: [OPAQUE] })),
  );
});

for (const fault of ['layer-sync-out:detached', 'layer-sync-out:before-sidecar']) {
  test(`a manager killed -9 in an in-layer stop (${fault}) loses nothing; its next start writes the sidecar and the next create attaches the same data`, async () => {
    const { rootfs, upperdir } = container();
    const m = manager();
    const req = { rootfs, upperdir, mountpoints: [DOCKER], ...IDS };
    const r = runChild(m, req, ['create', `fault:${fault}`, 'sync-out']);
    assert.equal(r.signal, 'SIGKILL', r.out);
    const before = manifest(path.join(upperdir, DOCKER));
    const sidecar = path.join(upperdir, 'var/lib/.docker.sysrunc-meta.json');
    assert.equal(existsSync(sidecar), false, 'killed before the sidecar was written');
    const { vm } = manager(m.dir);
    await vm.recover();
    assert.ok(existsSync(sidecar), 'the manager\'s next start finished the stop');
    assert.equal(vm.list()[0]?.volumes[0]?.layer?.stopping, undefined, 'no longer stopping');
    const view = (await vm.createVolumes('c1', req)).mounts[0]!.source;
    assert.ok(isMountPoint(view));
    assert.deepEqual(manifest(path.join(upperdir, DOCKER)), before);
    const out = await vm.syncOut('c1', { rootfs, intoUpperdir: true });
    assert.equal(out.volumes[0]?.sidecarWhiteouts, 2);
  });
}

test('copy mode: a manager killed -9 before the first swap leaves the image content in the rootfs and the volume whole', async () => {
  const { rootfs } = container();
  const m = manager();
  const req = { rootfs, mountpoints: [DOCKER], ...IDS };
  const r = runChild(m, req, ['create', 'write:added:new data', 'fault:copy-sync-out:before-swap', 'sync-out']);
  assert.equal(r.signal, 'SIGKILL', r.out);
  assert.equal(existsSync(path.join(rootfs, DOCKER, 'added')), false, 'the content before the stop is still in place');
  assert.ok(existsSync(path.join(rootfs, DOCKER, 'overlay2')));
  const { vm, root } = manager(m.dir);
  await vm.recover();
  const volume = path.join(root, 'c1', readdirSync(path.join(root, 'c1'))[0] ?? '');
  assert.equal(readFileSync(path.join(volume, 'added'), 'utf8'), 'new data');
  await vm.syncOut('c1', { rootfs });
  assert.equal(readFileSync(path.join(rootfs, DOCKER, 'added'), 'utf8'), 'new data');
  assert.deepEqual(readdirSync(path.join(rootfs, 'var/lib')).filter((n) => n.includes('sysrunc-new') || n.includes('sysrunc-old')), []);
});

test('copy mode: a manager killed -9 after an in-place update, before recording it, makes the next stop copy in full', async () => {
  const { rootfs } = container();
  const m = manager();
  const req = { rootfs, mountpoints: [DOCKER], ...IDS };
  const r = runChild(m, req, ['create', 'sync-out', 'write:added:new data', 'fault:copy-sync-out:updated', 'sync-out']);
  assert.equal(r.signal, 'SIGKILL', r.out);
  const { vm } = manager(m.dir);
  await vm.recover();
  assert.equal(vm.list()[0]?.volumes[0]?.lastSyncOut, undefined, 'the update is not trusted');
  const out = await vm.syncOut('c1', { rootfs });
  assert.equal(out.volumes[0]?.kept, 0, 'a full copy');
  assert.equal(readFileSync(path.join(rootfs, DOCKER, 'added'), 'utf8'), 'new data');
});

/** A fresh tmpfs of `size` at a new scratch dir (unmounted by the scratch's cleanup via detach). */
function tinyTmpfs(name: string, size: string): string {
  const dir = s.sub(name);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  tmpfsMounts.push(dir);
  return dir;
}

test('copy mode: a sync-out that fills the disk fails, leaving the rootfs content and the volume as they were', async () => {
  const rootfs = tinyTmpfs('full-rootfs', '4m');
  makeSpecialTree(path.join(rootfs, DOCKER), { overlayMarkers: true });
  const before = manifest(path.join(rootfs, DOCKER));
  const { vm } = manager();
  const volume = (await vm.createVolumes('c1', { rootfs, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  writeFileSync(path.join(volume, 'big'), Buffer.alloc(8 * 1024 * 1024, 1));
  chownSync(path.join(volume, 'big'), BASE, BASE);
  await assert.rejects(vm.syncOut('c1', { rootfs }), /ENOSPC/);
  assert.deepEqual(manifest(path.join(rootfs, DOCKER)), before);
  assert.deepEqual(readdirSync(path.join(rootfs, 'var/lib')).sort(), ['docker'], 'no half copy left beside it');
  assert.equal(statSync(path.join(volume, 'big')).size, 8 * 1024 * 1024);
});

test('in-layer: a stop on a full disk fails to write the sidecar but keeps the data, and the next create attaches it', async () => {
  const upperdir = tinyTmpfs('full-upper', '4m');
  const { rootfs } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  const before = manifest(path.join(upperdir, DOCKER));
  // Fill the disk to the last byte.
  spawnSync('dd', ['if=/dev/zero', `of=${path.join(upperdir, 'filler')}`, 'bs=64k'], { encoding: 'utf8' });
  await assert.rejects(vm.syncOut('c1', { rootfs, intoUpperdir: true }), /ENOSPC/);
  assert.deepEqual(manifest(path.join(upperdir, DOCKER)), before);
  const view = (await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  assert.ok(isMountPoint(view));
  assert.deepEqual(manifest(path.join(upperdir, DOCKER)), before);
});
