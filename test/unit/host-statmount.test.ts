import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { mountFs } from '../../src/host/fsmount.ts';
import { bindMount, isMountPoint, readMountInfo } from '../../src/host/mount.ts';
import { parseOverlayMount, topOverlayAt } from '../../src/host/overlay-mountinfo.ts';
import { mountFlagsAt, topMountAt } from '../../src/host/statmount.ts';
import { libc } from '../../src/host/libc.ts';
import { releaseEnginePath, insideDir, replaceEngineOverlay } from '../../src/manager/ownership/engine-overlay.ts';
import { withMountScratch } from '../fixtures/ownership/tree.ts';
import { mountOverlayIn, recordingSwap } from '../fixtures/overlay-in.ts';

// Kernels before 6.11 (no unique mount ids or no STATMOUNT_MNT_OPTS) answer from mountinfo instead.
const noStatmount = topMountAt('/').kind === 'unknown' && 'the kernel cannot describe a mount by itself (statmount with options: 6.11)';

const [MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND] = [2, 4, 8, 32, 4096];

const withWork = (fn: (work: string) => void): (() => void) => withMountScratch('statmount', fn);

test('the top mount at an overlay\'s path is told from that mount: fs type overlay and its upper dir', { skip: noStatmount }, withWork((work) => {
  const o = mountOverlayIn(work);
  const top = topMountAt(o.merged);
  assert.equal(top.kind, 'mount');
  assert.ok(top.kind === 'mount' && top.fsType === 'overlay');
  assert.ok(top.kind === 'mount' && top.superOptions.split(',').includes(`upperdir=${o.upper}`), top.kind === 'mount' ? top.superOptions : '');
}));

test('topOverlayAt reads the same layers as mountinfo does', withWork((work) => {
  const o = mountOverlayIn(work);
  const fromMount = topOverlayAt(o.merged);
  // mountinfo's super options start with the superblock's rw/ro, which statmount leaves out.
  const { rw, ...options } = parseOverlayMount(o.merged).options;
  assert.equal(rw, true);
  assert.deepEqual(fromMount, { ...parseOverlayMount(o.merged), options });
  assert.equal(fromMount.upperdir, o.upper);
  assert.equal(fromMount.workdir, o.work);
}));

test('a directory that is no mount point is not a mount, and topOverlayAt says so', { skip: noStatmount }, withWork((work) => {
  const dir = path.join(work, 'plain');
  mkdirSync(dir);
  assert.deepEqual(topMountAt(dir), { kind: 'not-a-mount' });
  assert.throws(() => topOverlayAt(dir), /not a mountpoint/);
}));

test('topOverlayAt refuses a mount of another file system stacked over an overlay', withWork((work) => {
  const o = mountOverlayIn(work);
  mountFs('tmpfs', [], o.merged);
  assert.throws(() => topOverlayAt(o.merged), /not an overlay mount \(fs type tmpfs\)/);
}));

test('releaseEnginePath unmounts only the overlay whose upper dir is sysrunc\'s, and leaves the engine\'s under it', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  const ours = mountOverlayIn(path.join(work, 'run'));
  bindMount(ours.merged, engine.merged);
  const back = releaseEnginePath(engine.merged, (overlay) => insideDir(path.join(work, 'run'), overlay.upperdir), recordingSwap());
  assert.equal(back.released, true);
  back.ours?.close();
  assert.equal(topOverlayAt(engine.merged).upperdir, engine.upper);
}));

test('releaseEnginePath leaves the engine\'s own overlay alone', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  const back = releaseEnginePath(engine.merged, (overlay) => insideDir(path.join(work, 'run'), overlay.upperdir), recordingSwap());
  assert.deepEqual(back, { released: false });
  assert.equal(topOverlayAt(engine.merged).upperdir, engine.upper);
}));

test('when sysrunc\'s overlay cannot be made, the engine\'s is mounted again inside the swap lock', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  const ref = { mountpoint: engine.merged, lowerdirs: engine.lowers, upperdir: engine.upper, workdir: engine.work, options: {} };
  const own = path.join(work, 'own');
  mkdirSync(own);
  const inLock: boolean[] = [];
  const swap = { ...recordingSwap(), underLock: (fn: () => void): void => {
    fn();
    inLock.push(isMountPoint(engine.merged));
  } };
  assert.throws(() => replaceEngineOverlay(ref, own, () => { throw new Error('no overlay today'); }, swap), /no overlay today/);
  assert.deepEqual(inLock, [true], 'the engine\'s overlay came back outside the lock');
  assert.equal(topOverlayAt(engine.merged).upperdir, engine.upper);
}));

test('sysrunc\'s overlay replacing the engine\'s is mounted inside the swap lock, and only then attached at the engine\'s path', withWork((work) => {
  const engine = mountOverlayIn(path.join(work, 'engine'));
  const ref = { mountpoint: engine.merged, lowerdirs: engine.lowers, upperdir: engine.upper, workdir: engine.work, options: {} };
  const ours = path.join(work, 'ours');
  mkdirSync(ours);
  let locked = false;
  const mountedInLock: boolean[] = [];
  const underLock = (fn: () => void): void => {
    locked = true;
    try {
      fn();
    } finally {
      locked = false;
    }
  };
  replaceEngineOverlay(ref, ours, () => {
    mountFs('tmpfs', [], ours);
    mountedInLock.push(locked);
  }, { ...recordingSwap(), underLock });
  assert.deepEqual(mountedInLock, [true]);
  assert.throws(() => topOverlayAt(engine.merged), /not an overlay mount \(fs type tmpfs\)/);
}));

test('the locked flags of the mount a path lives on are read from that mount, as mountinfo names them', { skip: noStatmount }, withWork((work) => {
  const locked = path.join(work, 'locked');
  mkdirSync(locked);
  mountFs('tmpfs', [], locked);
  // nosuid, nodev and noexec are per-mount flags: set on the attached mount, as the engines' shm has them.
  libc().mount(null, locked, null, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  mkdirSync(path.join(locked, 'sub'));
  const flags = mountFlagsAt(path.join(locked, 'sub'));
  assert.deepEqual(flags, ['nosuid', 'nodev', 'noexec']);
  const line = readMountInfo().filter((m) => m.mountPoint === locked).at(-1);
  assert.deepEqual(['ro', 'nosuid', 'nodev', 'noexec'].filter((f) => line?.options.split(',').includes(f)), flags);
  assert.throws(() => mountFlagsAt(path.join(work, 'missing')), /ENOENT/);
}));
