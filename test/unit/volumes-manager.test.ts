import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, chownSync,
} from 'node:fs';
import path from 'node:path';
import { unmount } from '../../src/host/mount.ts';
import { VolumeError } from '../../src/manager/volumes/errors.ts';
import { VolumeManager } from '../../src/manager/volumes/volume-manager.ts';
import { copyTree } from '../../src/manager/volumes/copy-tree.ts';
import { withUnshiftedView } from '../../src/manager/volumes/shift-view.ts';
import { lgetxattrs } from '../../src/host/fs-native.ts';
import { scratch } from '../fixtures/volumes/env.ts';
import { volumeManagerAt, type TestVolumeManager, TEST_ID_BASE as BASE, TEST_IDS as IDS } from '../fixtures/volumes/manager.ts';
import { manifest, withoutBlocks, type ManifestEntry } from '../fixtures/volumes/manifest.ts';
import { makeSpecialTree } from '../fixtures/volumes/tree.ts';

const ID_XATTRS = ['system.posix_acl_access', 'system.posix_acl_default', 'security.capability'];

const s = scratch('volumes-manager');
after(() => s.cleanup());

function manager(dir = s.sub('mgr')): TestVolumeManager {
  return volumeManagerAt(dir);
}

/** A rootfs dir whose /var/lib/docker holds the special tree. */
function imageRootfs(opts: { overlayMarkers?: boolean } = {}): string {
  const rootfs = s.sub('image');
  makeSpecialTree(path.join(rootfs, 'var/lib/docker'), opts);
  return rootfs;
}

function xattr(p: string, name: string): Buffer | undefined {
  return lgetxattrs(Buffer.from(p), p).find(([n]) => n === name)?.[1];
}

/** Whiteouts come back from a sidecar as separate inodes: their hardlink grouping is not kept. */
function ignoreWhiteoutLinks(m: Array<Omit<ManifestEntry, 'blocks'>>): Array<Omit<ManifestEntry, 'blocks'>> {
  return m.map((e) => (e.type === 'chr' && e.rdev === '0:0' ? { ...e, linkGroup: null } : e));
}

test('createVolumes copies the image content into the volume with every id shifted by the container base', async () => {
  const rootfs = imageRootfs();
  const { vm, root } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  assert.equal(mounts.length, 1);
  const m = mounts[0]!;
  assert.deepEqual({ ...m, source: path.dirname(m.source) }, {
    destination: '/var/lib/docker', source: path.join(root, 'c1'), type: 'bind', options: ['rbind', 'rprivate'],
  });
  assert.deepEqual(
    withoutBlocks(manifest(m.source, { idOffset: BASE, skipXattrs: ID_XATTRS })),
    withoutBlocks(manifest(path.join(rootfs, 'var/lib/docker'), { skipXattrs: ID_XATTRS })),
  );
});

test('createVolumes shifts ACL entries and file-capability root ids along with the owners', async () => {
  const rootfs = imageRootfs();
  const { vm } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  const diff = path.join(mounts[0]!.source, 'overlay2/a1b2c3/diff');
  const cap = xattr(path.join(diff, 'usr/bin/ping'), 'security.capability');
  assert.ok(cap !== undefined && cap.length === 24, 'a v3 capability');
  assert.equal(cap.readUInt32LE(20), BASE, 'capability root id is the container root');
  const acl = xattr(path.join(diff, 'acl-file'), 'system.posix_acl_access');
  assert.ok(acl !== undefined);
  const named: Array<[number, number]> = [];
  for (let off = 4; off + 8 <= acl.length; off += 8) {
    const tag = acl.readUInt16LE(off);
    if (tag === 0x02 || tag === 0x08) named.push([tag, acl.readUInt32LE(off + 4)]);
  }
  assert.deepEqual(named, [[0x02, BASE + 1000], [0x08, BASE + 2000]]);
});

test('a tree synced in and then out again is identical to the image tree', async () => {
  const rootfs = imageRootfs();
  const target = s.sub('target');
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  const out = await vm.syncOut('c1', { rootfs: target });
  assert.equal(out.skipped, false);
  assert.equal(out.volumes[0]?.sidecarWhiteouts, 0);
  const before = manifest(path.join(rootfs, 'var/lib/docker'));
  const after = manifest(path.join(target, 'var/lib/docker'));
  assert.deepEqual(withoutBlocks(after), withoutBlocks(before));
  const sparse = (m: ManifestEntry[]) => m.find((e) => e.path.endsWith('/sparse.img'))?.blocks ?? Infinity;
  assert.ok(sparse(after) <= sparse(before) * 2, 'the sparse file stays sparse');
});

test('a volume synced out into an overlayfs rootfs comes back intact at the next sync-in', async () => {
  const lower = s.sub('lower');
  mkdirSync(path.join(lower, 'var/lib/docker'), { recursive: true });
  writeFileSync(path.join(lower, 'var/lib/docker/stale'), 'from the image');
  const merged = s.overlay('rootfs', lower);
  const { vm } = manager();
  const first = await vm.createVolumes('c1', { rootfs: merged, mountpoints: ['/var/lib/docker'], ...IDS });
  // What an inner dockerd leaves behind: whiteouts, opaque dirs, hardlinks, in the container's ids.
  const inner = path.join(s.sub('inner'), 'docker');
  makeSpecialTree(inner);
  const volume = first.mounts[0]!.source;
  rmSync(path.join(volume, 'stale'));
  await withUnshiftedView(volume, { ...IDS, size: 65536 }, (view) => copyTree(inner, view, { srcLabel: inner, dstLabel: volume }));
  const out = await vm.syncOut('c1', { rootfs: merged });
  assert.equal(out.volumes[0]?.sidecarWhiteouts, 2, 'overlayfs refuses whiteouts; they go to the sidecar');
  assert.equal(existsSync(path.join(merged, 'var/lib/docker/stale')), false, 'old content at the path is replaced');
  const other = { uid: BASE + 65536, gid: BASE + 65536 };
  const second = await vm.createVolumes('c2', { rootfs: merged, mountpoints: ['/var/lib/docker'], ...other });
  assert.deepEqual(
    ignoreWhiteoutLinks(withoutBlocks(manifest(second.mounts[0]!.source, { idOffset: other.uid, skipXattrs: ID_XATTRS }))),
    ignoreWhiteoutLinks(withoutBlocks(manifest(inner, { skipXattrs: ID_XATTRS }))),
  );
});

test('a second syncOut copies only what changed and leaves the rootfs equal to the volume', async () => {
  const rootfs = imageRootfs();
  const { vm } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  const volume = mounts[0]!.source;
  // Entries are trusted as unchanged only when older than the last sync-out by a margin.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const first = await vm.syncOut('c1', { rootfs });
  assert.equal(first.volumes[0]?.kept, 0, 'the first sync-out is a full copy');
  const diff = path.join(volume, 'overlay2/a1b2c3/diff');
  writeFileSync(path.join(diff, 'etc/passwd'), 'root:x:0:0:changed:/root:/bin/sh\n');
  writeFileSync(path.join(volume, 'new-layer-file'), 'new');
  chownSync(path.join(volume, 'new-layer-file'), BASE + 5, BASE + 5);
  rmSync(path.join(diff, 'usr/bin/su'));
  rmSync(path.join(diff, 'home'), { recursive: true });
  linkSync(path.join(diff, 'hard1'), path.join(diff, 'hard4'));
  const second = await vm.syncOut('c1', { rootfs });
  assert.ok((second.volumes[0]?.kept ?? 0) > 10, `kept ${second.volumes[0]?.kept}`);
  assert.deepEqual(
    withoutBlocks(manifest(path.join(rootfs, 'var/lib/docker'), { skipXattrs: ID_XATTRS })),
    withoutBlocks(manifest(volume, { idOffset: BASE, skipXattrs: ID_XATTRS })),
  );
});

test('createVolumes for an existing container keeps the volume content and does not sync in again', async () => {
  const rootfs = imageRootfs();
  const { vm } = manager();
  const first = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  const source = first.mounts[0]!.source;
  writeFileSync(path.join(source, 'pulled-image'), 'inner data');
  writeFileSync(path.join(rootfs, 'var/lib/docker/added-to-image'), 'x');
  const again = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  assert.deepEqual(again, first);
  assert.equal(readFileSync(path.join(source, 'pulled-image'), 'utf8'), 'inner data');
  assert.equal(existsSync(path.join(source, 'added-to-image')), false);
});

test('createVolumes gives an empty volume owned by the container root when the image has nothing at the path', async () => {
  const rootfs = s.sub('empty-image');
  const { vm } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/kubelet'], ...IDS });
  const st = lstatSync(mounts[0]!.source);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [BASE, BASE, 0o755]);
  assert.deepEqual(readdirSync(mounts[0]!.source), []);
});

test('destroyVolumes removes the host directories and the state entry', async () => {
  const { vm, root, stateFile } = manager();
  await vm.createVolumes('c1', { rootfs: imageRootfs(), mountpoints: ['/var/lib/docker', '/var/lib/kubelet'], ...IDS });
  await vm.destroyVolumes('c1');
  assert.equal(existsSync(path.join(root, 'c1')), false);
  assert.deepEqual(vm.list(), []);
  assert.deepEqual(JSON.parse(readFileSync(stateFile, 'utf8')).containers, {});
});

test('createVolumes refuses a volume root on overlayfs and creates nothing', async () => {
  const merged = s.overlay('overlay-root', s.sub('lower'));
  const root = path.join(merged, 'volumes');
  const stateFile = path.join(s.sub('state'), 'volumes.json');
  const vm = new VolumeManager({ root, stateFile });
  await assert.rejects(
    vm.createVolumes('c1', { rootfs: imageRootfs(), mountpoints: ['/var/lib/docker'], ...IDS }),
    (err: unknown) => err instanceof VolumeError && err.message.includes(`${merged} is on overlayfs`),
  );
  assert.equal(existsSync(root), false);
  assert.deepEqual(vm.list(), []);
});

test('a failed createVolumes leaves no volume directory and no state entry', async () => {
  const rootfs = imageRootfs();
  // Owned by an id outside the container's range: the shifted copy cannot represent it.
  mkdirSync(path.join(rootfs, 'var/lib/kubelet'), { recursive: true });
  writeFileSync(path.join(rootfs, 'var/lib/kubelet/foreign'), 'x');
  chownSync(path.join(rootfs, 'var/lib/kubelet/foreign'), 70000, 70000);
  const { vm, root, stateFile } = manager();
  await assert.rejects(
    vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker', '/var/lib/kubelet'], ...IDS }),
    (err: unknown) =>
      err instanceof VolumeError &&
      err.message.includes('sync-in of /var/lib/kubelet') &&
      err.message.includes(`fchown ${path.join(rootfs, 'var/lib/kubelet/foreign')}: EOVERFLOW`),
  );
  assert.deepEqual(readdirSync(root), []);
  assert.deepEqual(vm.list(), []);
  assert.deepEqual(JSON.parse(readFileSync(stateFile, 'utf8')).containers, {});
});

test('syncOut with autoRemove leaves the rootfs untouched', async () => {
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs: imageRootfs(), mountpoints: ['/var/lib/docker'], ...IDS });
  const target = s.sub('target');
  const out = await vm.syncOut('c1', { rootfs: target, autoRemove: true });
  assert.deepEqual(out, { skipped: true, volumes: [] });
  assert.deepEqual(readdirSync(target), []);
});

test('the volumes and their state survive a manager restart', async () => {
  const dir = s.sub('restart');
  const rootfs = imageRootfs();
  const first = manager(dir);
  const created = await first.vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  writeFileSync(path.join(created.mounts[0]!.source, 'inner'), 'kept');
  const second = manager(dir);
  assert.deepEqual(second.vm.list(), first.vm.list());
  assert.deepEqual(await second.vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS }), created);
  assert.equal(readFileSync(path.join(created.mounts[0]!.source, 'inner'), 'utf8'), 'kept');
});

test('sync-in follows a symlinked store path inside the rootfs, never on the host', async () => {
  const rootfs = s.sub('symlinked');
  mkdirSync(path.join(rootfs, 'etc'));
  writeFileSync(path.join(rootfs, 'etc', 'image-marker'), 'image');
  mkdirSync(path.join(rootfs, 'var/lib'), { recursive: true });
  symlinkSync('/etc', path.join(rootfs, 'var/lib/docker'));
  const { vm } = manager();
  const { mounts } = await vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker'], ...IDS });
  assert.deepEqual(readdirSync(mounts[0]!.source), ['image-marker']);
  assert.equal(vm.list()[0]?.volumes[0]?.rootfsPath, '/etc');
});

test('createVolumes refuses two store paths that the image links to one place', async () => {
  const rootfs = imageRootfs();
  symlinkSync('docker', path.join(rootfs, 'var/lib/kubelet'));
  const { vm, root } = manager();
  await assert.rejects(
    vm.createVolumes('c1', { rootfs, mountpoints: ['/var/lib/docker', '/var/lib/kubelet'], ...IDS }),
    /\/var\/lib\/kubelet resolves to \/var\/lib\/docker in the rootfs, overlapping the volume for \/var\/lib\/docker/,
  );
  assert.deepEqual(readdirSync(root), []);
  assert.deepEqual(vm.list(), []);
});

test('createVolumes refuses an id range that differs from the existing volumes', async () => {
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs: imageRootfs(), mountpoints: ['/var/lib/docker'], ...IDS });
  await assert.rejects(
    vm.createVolumes('c1', { rootfs: imageRootfs(), mountpoints: ['/var/lib/docker'], uid: BASE + 65536, gid: BASE + 65536 }),
    /existing volumes belong to ids 268435456:268435456\+65536/,
  );
});

test('syncOutAndDestroyAll destroys only the containers the filter selects', async () => {
  const { vm, root } = manager();
  for (const id of ['gone', 'kept']) {
    await vm.createVolumes(id, { rootfs: s.sub('empty'), mountpoints: ['/var/lib/docker'], ...IDS });
  }
  const result = await vm.syncOutAndDestroyAll((id) => id === 'gone');
  assert.deepEqual(result, { destroyed: ['gone'], failed: [] });
  assert.deepEqual(vm.list().map((c) => c.id), ['kept']);
  assert.deepEqual(readdirSync(root), ['kept']);
});

test('recover removes volumes whose first sync-in never finished', async () => {
  const dir = s.sub('crash');
  const { vm, root, stateFile } = manager(dir);
  const { mounts } = await vm.createVolumes('c1', { rootfs: s.sub('empty'), mountpoints: ['/var/lib/docker'], ...IDS });
  const state = JSON.parse(readFileSync(stateFile, 'utf8'));
  state.containers.c1.volumes[0].syncedIn = false; // as if the manager died mid sync-in
  writeFileSync(stateFile, JSON.stringify(state));
  mkdirSync(path.join(root, 'orphan'));
  const restarted = manager(dir).vm;
  const removed = [mounts[0]!.source, path.join(root, 'c1'), path.join(root, 'orphan')];
  assert.deepEqual((await restarted.recover()).sort(), removed.sort());
  assert.deepEqual(restarted.list(), []);
  assert.equal(existsSync(mounts[0]!.source), false);
});

test('syncOut refuses a rootfs that is no longer mounted the way it was at create', async () => {
  const lower = s.sub('lower');
  mkdirSync(path.join(lower, 'var/lib/docker'), { recursive: true });
  const merged = s.overlay('rootfs', lower);
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs: merged, mountpoints: ['/var/lib/docker'], ...IDS });
  unmount(merged);
  await assert.rejects(vm.syncOut('c1', { rootfs: merged }), /is it still mounted\?/);
  assert.deepEqual(readdirSync(merged), []);
});
