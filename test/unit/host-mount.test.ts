import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  NotMountedError, idmappedBindMount, isMountPoint, mountsUnder, readMountInfo, unmount,
} from '../../src/host/mount.ts';
import { createUserNamespaceFd } from '../../src/host/userns.ts';
import { SyscallError } from '../../src/host/libc.ts';

const HOST_ROOT = 100000;
const MAP = [{ containerID: 0, hostID: HOST_ROOT, size: 65536 }];

let usernsFd = -1;
const scratch: string[] = [];

before(() => {
  usernsFd = createUserNamespaceFd(MAP, MAP);
});

after(() => {
  closeSync(usernsFd);
  for (const dir of scratch.reverse()) {
    for (const mp of mountsUnder(dir).reverse()) execFileSync('umount', ['-l', mp]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A fresh directory traversable by uid 100000 (mkdtemp makes 0700). */
function scratchDir(parent: string): string {
  const dir = mkdtempSync(path.join(parent, 'sysrunc-host-'));
  chmodSync(dir, 0o755);
  scratch.push(dir);
  return dir;
}

function mkdir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

function mountTmpfs(dir: string): string {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', mkdir(dir)]);
  return dir;
}

function mountOverlay(base: string, lower: string): string {
  const upper = mkdir(path.join(base, 'upper'));
  const work = mkdir(path.join(base, 'work'));
  const merged = mkdir(path.join(base, 'merged'));
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  return merged;
}

function touchAs(uid: number, file: string): void {
  execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'touch', file]);
}

function mountEntry(mountPoint: string) {
  return readMountInfo().filter((m) => m.mountPoint === mountPoint).at(-1);
}

const filesystems: { name: string; source: () => string }[] = [
  { name: 'tmpfs', source: () => mountTmpfs(path.join(scratchDir('/tmp'), 'src')) },
  { name: 'ext4', source: () => mkdir(path.join(scratchDir('/var/tmp'), 'src')) },
];

for (const fs of filesystems) {
  describe(`idmapped bind mount of a ${fs.name} directory`, () => {
    let source = '';
    let target = '';
    before(() => {
      source = fs.source();
      writeFileSync(path.join(source, 'root-owned'), 'x');
      target = mkdir(path.join(scratchDir('/tmp'), 'target'));
      idmappedBindMount(source, target, usernsFd);
    });

    test('source filesystem is the expected type', () => {
      assert.equal(mountEntry(target)?.fsType, fs.name === 'overlayfs' ? 'overlay' : fs.name);
    });

    test('a root-owned file shows the mapped host uid through the target', () => {
      const st = statSync(path.join(target, 'root-owned'));
      assert.equal(st.uid, HOST_ROOT);
      assert.equal(st.gid, HOST_ROOT);
    });

    test('a file created through the target by the mapped uid is owned by root on the source', () => {
      touchAs(HOST_ROOT, path.join(target, 'created'));
      const st = statSync(path.join(source, 'created'));
      assert.equal(st.uid, 0);
      assert.equal(st.gid, 0);
    });
  });
}

// Mainline overlayfs (6.18 included) lacks FS_ALLOW_IDMAP: an overlay mount
// cannot be idmapped, only its layers can.
test('idmapped bind of an overlayfs mount fails with EINVAL naming the filesystem', () => {
  const dir = scratchDir('/var/tmp');
  const merged = mountOverlay(dir, mkdir(path.join(dir, 'lower')));
  const target = mkdir(path.join(dir, 'target'));
  assert.throws(
    () => idmappedBindMount(merged, target, usernsFd),
    (err: unknown) =>
      err instanceof SyscallError &&
      err.message === `mount_setattr ${merged}: EINVAL (idmapped mounts not supported by filesystem overlay)`,
  );
  assert.equal(isMountPoint(target), false);
});

test('an overlay over an idmapped lower layer shows and writes the mapped ids', () => {
  const dir = scratchDir('/var/tmp');
  const lower = mkdir(path.join(dir, 'lower'));
  writeFileSync(path.join(lower, 'root-owned'), 'x');
  const mappedLower = mkdir(path.join(dir, 'mapped-lower'));
  idmappedBindMount(lower, mappedLower, usernsFd);
  // The upper layer cannot be idmapped (overlay's own work dir creation as host
  // root fails with EOVERFLOW there), so it is owned by the mapped root instead.
  execFileSync('chown', [`${HOST_ROOT}:${HOST_ROOT}`, mkdir(path.join(dir, 'upper'))]);
  const merged = mountOverlay(dir, mappedLower);
  assert.equal(statSync(path.join(merged, 'root-owned')).uid, HOST_ROOT);
  touchAs(HOST_ROOT, path.join(merged, 'created'));
  assert.equal(statSync(path.join(dir, 'upper', 'created')).uid, HOST_ROOT);
  assert.equal(statSync(path.join(lower, 'root-owned')).uid, 0);
});

test('idmapped bind of a single file onto a file target', () => {
  const dir = scratchDir('/tmp');
  const source = path.join(mountTmpfs(path.join(dir, 'src')), 'file');
  writeFileSync(source, 'content');
  const target = path.join(dir, 'target-file');
  writeFileSync(target, '');
  idmappedBindMount(source, target, usernsFd);
  assert.equal(statSync(target).uid, HOST_ROOT);
  assert.equal(readFileSync(target, 'utf8'), 'content');
  assert.ok(isMountPoint(target));
});

test('a symlink source is rejected with ELOOP naming it, and nothing is mounted', () => {
  const dir = scratchDir('/tmp');
  const real = mkdir(path.join(dir, 'real'));
  const link = path.join(dir, 'link');
  symlinkSync(real, link);
  const target = mkdir(path.join(dir, 'target'));
  assert.throws(
    () => idmappedBindMount(link, target, usernsFd),
    (err: unknown) => err instanceof SyscallError && err.code === 'ELOOP' && err.message.startsWith(`open_tree ${link}: ELOOP`),
  );
  assert.equal(isMountPoint(target), false);
});

test('a directory source onto a file target is rejected with ENOTDIR', () => {
  const dir = scratchDir('/tmp');
  const source = mkdir(path.join(dir, 'src'));
  const target = path.join(dir, 'target-file');
  writeFileSync(target, '');
  assert.throws(() => idmappedBindMount(source, target, usernsFd), (err: unknown) => err instanceof SyscallError && err.code === 'ENOTDIR');
  assert.equal(isMountPoint(target), false);
});

test('the new mount is private even below a shared mount', () => {
  const dir = scratchDir('/tmp');
  const parent = mountTmpfs(path.join(dir, 'shared'));
  execFileSync('mount', ['--make-shared', parent]);
  assert.ok(mountEntry(parent)?.optionalFields.some((f) => f.startsWith('shared:')));
  const source = mkdir(path.join(dir, 'src'));
  const target = mkdir(path.join(parent, 'target'));
  idmappedBindMount(source, target, usernsFd);
  assert.deepEqual(mountEntry(target)?.optionalFields, []);
});

test('a recursive idmapped bind includes submounts, a plain one does not', () => {
  const dir = scratchDir('/tmp');
  const source = mkdir(path.join(dir, 'src'));
  mountTmpfs(path.join(source, 'sub'));
  writeFileSync(path.join(source, 'sub', 'file'), 'x');
  const recursive = mkdir(path.join(dir, 'recursive'));
  const plain = mkdir(path.join(dir, 'plain'));
  idmappedBindMount(source, recursive, usernsFd, { recursive: true });
  idmappedBindMount(source, plain, usernsFd);
  assert.equal(statSync(path.join(recursive, 'sub', 'file')).uid, HOST_ROOT);
  assert.equal(isMountPoint(path.join(plain, 'sub')), false);
});

test('unmount leaves no mount at the target in mountinfo', () => {
  const dir = scratchDir('/tmp');
  const source = mkdir(path.join(dir, 'src'));
  const target = mkdir(path.join(dir, 'target'));
  idmappedBindMount(source, target, usernsFd);
  assert.ok(mountEntry(target));
  unmount(target);
  assert.equal(mountEntry(target), undefined);
  assert.equal(isMountPoint(target), false);
});

test('unmount of a path with nothing mounted throws NotMountedError', () => {
  const dir = mkdir(path.join(scratchDir('/tmp'), 'plain'));
  assert.throws(
    () => unmount(dir, { detach: true }),
    (err: unknown) => err instanceof NotMountedError && err.code === 'EINVAL' && err.message === `umount2 ${dir}: EINVAL (not mounted)`,
  );
});

test('isMountPoint is true for a mount root, false for a plain dir and a missing path', () => {
  const dir = scratchDir('/tmp');
  const mounted = mountTmpfs(path.join(dir, 'mnt'));
  assert.equal(isMountPoint(mounted), true);
  assert.equal(isMountPoint(mkdir(path.join(mounted, 'inner'))), false);
  assert.equal(isMountPoint(path.join(dir, 'missing')), false);
});

test('mountsUnder lists mounts at and below a prefix with escapes decoded', () => {
  const dir = scratchDir('/tmp');
  const spaced = mountTmpfs(path.join(dir, 'with space'));
  const nested = mountTmpfs(path.join(spaced, 'tab\there'));
  mountTmpfs(`${dir}-sibling-not-below`);
  scratch.push(`${dir}-sibling-not-below`);
  assert.deepEqual(mountsUnder(dir), [spaced, nested]);
});
