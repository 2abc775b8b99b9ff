// Copy-mode store volumes whose host directory sits on another filesystem than the container's
// rootfs (issue 13's copy case): the manager's root on xfs (reflinks) or tmpfs, the rootfs on the
// scratch disk. Sync-in and sync-out must keep bytes, holes, hardlinks, xattrs and ACLs, and a
// manager killed -9 in the middle of a copy must leave the data whole in one of the two places.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { FS_OWN_XATTRS } from '../../src/manager/volumes/copy-tree.ts';
import { scratch } from '../fixtures/volumes/env.ts';
import { volumeManagerAt, type TestVolumeManager, TEST_ID_BASE as BASE, TEST_IDS as IDS, DOCKER_STORE as DOCKER, CRASH_CHILD as CHILD } from '../fixtures/volumes/manager.ts';
import { contentHash, manifest, withoutBlocks } from '../fixtures/volumes/manifest.ts';
import { makeSpecialTree } from '../fixtures/volumes/tree.ts';

const ID_XATTRS = ['system.posix_acl_access', 'system.posix_acl_default', 'security.capability'];

const s = scratch('volumes-cross-fs');
const mounts: string[] = [];
after(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  s.cleanup();
});

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A fresh filesystem of the given type mounted at a new scratch dir (xfs: a loop image with reflinks). */
function filesystem(type: 'xfs' | 'tmpfs'): string {
  const dir = s.sub(type);
  if (type === 'tmpfs') {
    sh('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', dir]);
  } else {
    const image = `${dir}.img`;
    closeSync(openSync(image, 'wx', 0o600));
    truncateSync(image, 512 * 1024 * 1024);
    sh('mkfs.xfs', ['-q', '-m', 'reflink=1', image]);
    sh('mount', ['-o', 'loop', image, dir]);
  }
  mounts.push(dir);
  return dir;
}

function manager(dir: string): TestVolumeManager {
  return volumeManagerAt(dir);
}

function imageRootfs(): string {
  const rootfs = s.sub('image');
  makeSpecialTree(path.join(rootfs, DOCKER));
  return rootfs;
}

const hasXfs = spawnSync('mkfs.xfs', ['-V']).status === 0;

for (const type of ['xfs', 'tmpfs'] as const) {
  test(`a volume on ${type} synced in from a rootfs on another filesystem and out again is identical to the image tree: bytes, holes, hardlinks, xattrs and ACLs`, { skip: type === 'xfs' && !hasXfs && 'mkfs.xfs missing (scripts/setup-host.sh installs xfsprogs)' }, async () => {
    const rootfs = imageRootfs();
    const target = s.sub('target');
    const { vm } = manager(path.join(filesystem(type), 'mgr'));
    const volume = (await vm.createVolumes('c1', { rootfs, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
    assert.notEqual(statSync(volume).dev, statSync(rootfs).dev, 'the volume is on another filesystem');
    assert.deepEqual(
      // XFS lists its on-disk ACLs as trusted.SGI_ACL_* besides system.posix_acl_*: its own, not copied.
      withoutBlocks(manifest(volume, { idOffset: BASE, skipXattrs: [...ID_XATTRS, ...FS_OWN_XATTRS] })),
      withoutBlocks(manifest(path.join(rootfs, DOCKER), { skipXattrs: ID_XATTRS })),
      'synced in',
    );
    await vm.syncOut('c1', { rootfs: target });
    assert.deepEqual(withoutBlocks(manifest(path.join(target, DOCKER))), withoutBlocks(manifest(path.join(rootfs, DOCKER))), 'synced out');
  });
}

test('copy mode with the volume and the rootfs on one XFS filesystem shares the data extents (reflinks) instead of copying the bytes', { skip: !hasXfs && 'mkfs.xfs missing (scripts/setup-host.sh installs xfsprogs)' }, async () => {
  const xfs = filesystem('xfs');
  const rootfs = path.join(xfs, 'rootfs');
  makeSpecialTree(path.join(rootfs, DOCKER));
  const target = path.join(xfs, 'target');
  mkdirSync(target);
  const { vm } = manager(path.join(xfs, 'mgr'));
  const volume = (await vm.createVolumes('c1', { rootfs, mountpoints: [DOCKER], ...IDS })).mounts[0]!.source;
  writeFileSync(path.join(volume, 'blob'), randomBytes(1 << 20));
  chownSync(path.join(volume, 'blob'), BASE, BASE);
  await vm.syncOut('c1', { rootfs: target });
  const frag = spawnSync('filefrag', ['-v', path.join(target, DOCKER, 'blob')], { encoding: 'utf8' });
  assert.equal(frag.status, 0, frag.stderr);
  assert.match(frag.stdout, /shared/, frag.stdout);
  assert.equal(contentHash(path.join(target, DOCKER, 'blob')), contentHash(path.join(volume, 'blob')));
});

function runChild(m: { root: string; stateFile: string }, req: object, steps: string[]): { signal: NodeJS.Signals | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ ...m, id: 'c1', req, steps, owner: IDS })], { encoding: 'utf8' });
  if (r.signal === null && r.status !== 0) throw new Error(`crash child failed: ${r.stderr}`);
  return { signal: r.signal, out: r.stdout + r.stderr };
}

/** The volume's single host directory under the manager root. */
function volumeDir(root: string): string {
  return path.join(root, 'c1', readdirSync(path.join(root, 'c1'))[0] ?? '');
}

const leftovers = (rootfs: string) => readdirSync(path.join(rootfs, 'var/lib')).filter((n) => n.includes('sysrunc-new') || n.includes('sysrunc-old'));

test('a manager killed -9 in the middle of the first cross-filesystem copy leaves the rootfs content as it was and the volume whole; the next stop copies everything', async () => {
  const rootfs = imageRootfs();
  const before = manifest(path.join(rootfs, DOCKER));
  const m = manager(path.join(filesystem('tmpfs'), 'mgr'));
  const req = { rootfs, mountpoints: [DOCKER], ...IDS };
  const r = runChild(m, req, ['create', 'write:added:new data', 'fault:copy-sync-out:mid-copy', 'sync-out']);
  assert.equal(r.signal, 'SIGKILL', r.out);
  assert.match(r.out, /killing pid \d+ at copy-sync-out:mid-copy/);
  assert.deepEqual(manifest(path.join(rootfs, DOCKER)), before, 'the rootfs still has the content before the stop');
  assert.deepEqual(leftovers(rootfs), ['.docker.sysrunc-new'], 'the half copy is hidden beside it');
  const { vm } = manager(m.dir);
  await vm.recover();
  const volume = volumeDir(m.root);
  assert.equal(readFileSync(path.join(volume, 'added'), 'utf8'), 'new data', 'the volume is whole');
  await vm.syncOut('c1', { rootfs });
  assert.deepEqual(leftovers(rootfs), []);
  assert.deepEqual(
    withoutBlocks(manifest(path.join(rootfs, DOCKER), { skipXattrs: ID_XATTRS })),
    withoutBlocks(manifest(volume, { idOffset: BASE, skipXattrs: ID_XATTRS })),
  );
});

test('a manager killed -9 in the middle of a cross-filesystem in-place update makes the next stop copy in full, ending equal to the volume', async () => {
  const rootfs = imageRootfs();
  const m = manager(path.join(filesystem('tmpfs'), 'mgr'));
  const req = { rootfs, mountpoints: [DOCKER], ...IDS };
  const r = runChild(m, req, ['create', 'sync-out', 'write:added:new data', 'fault:copy-sync-out:mid-copy', 'sync-out']);
  assert.equal(r.signal, 'SIGKILL', r.out);
  const { vm } = manager(m.dir);
  await vm.recover();
  assert.equal(vm.list()[0]?.volumes[0]?.lastSyncOut, undefined, 'the half update is not trusted');
  const out = await vm.syncOut('c1', { rootfs });
  assert.equal(out.volumes[0]?.kept, 0, 'a full copy');
  assert.deepEqual(
    withoutBlocks(manifest(path.join(rootfs, DOCKER), { skipXattrs: ID_XATTRS })),
    withoutBlocks(manifest(volumeDir(m.root), { idOffset: BASE, skipXattrs: ID_XATTRS })),
  );
});

test('removing a container whose cross-filesystem copy was killed -9 midway removes its volume and state', async () => {
  const rootfs = imageRootfs();
  const m = manager(path.join(filesystem('tmpfs'), 'mgr'));
  const req = { rootfs, mountpoints: [DOCKER], ...IDS };
  assert.equal(runChild(m, req, ['create', 'fault:copy-sync-out:mid-copy', 'sync-out']).signal, 'SIGKILL');
  const { vm } = manager(m.dir);
  await vm.recover();
  await vm.destroyVolumes('c1');
  assert.equal(existsSync(path.join(m.root, 'c1')), false);
  assert.deepEqual(vm.list(), []);
});
