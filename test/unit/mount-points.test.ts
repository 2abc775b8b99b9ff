// The mount-points host action: what a pod sandbox's runc init cannot make in a rootfs its root does
// not own, made by the manager inside that rootfs and nowhere else (manager/ownership/mount-points.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeMountPoints } from '../../src/manager/ownership/mount-points.ts';

/** Runs fn with a rootfs dir and a host dir beside it (holding a file, resolv.conf), removed after. */
function withScratch(fn: (s: { root: string; host: string }) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-mount-points-'));
  const root = path.join(dir, 'rootfs');
  const host = path.join(dir, 'host');
  try {
    mkdirSync(root);
    mkdirSync(host);
    writeFileSync(path.join(host, 'resolv.conf'), 'nameserver 10.0.0.1\n');
    fn({ root, host });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('each point becomes a directory, with its missing parents', () => {
  withScratch((s) => {
    makeMountPoints({ kind: 'mount-points', root: s.root, points: [{ destination: '/proc' }, { destination: '/sys/fs/cgroup' }] });
    assert.ok(lstatSync(path.join(s.root, 'proc')).isDirectory());
    assert.ok(lstatSync(path.join(s.root, 'sys/fs/cgroup')).isDirectory());
  });
});

test('a bind of a file gets an empty file, a bind of a directory a directory', () => {
  withScratch((s) => {
    const points = [{ destination: '/etc/resolv.conf', bindSource: path.join(s.host, 'resolv.conf') }, { destination: '/dev/shm', bindSource: s.host }];
    makeMountPoints({ kind: 'mount-points', root: s.root, points });
    const file = lstatSync(path.join(s.root, 'etc/resolv.conf'));
    assert.ok(file.isFile());
    assert.equal(file.size, 0);
    assert.ok(lstatSync(path.join(s.root, 'dev/shm')).isDirectory());
  });
});

test('what the image already has at a point is left as it is', () => {
  withScratch((s) => {
    mkdirSync(path.join(s.root, 'etc'));
    writeFileSync(path.join(s.root, 'etc/hosts'), 'image\n');
    makeMountPoints({ kind: 'mount-points', root: s.root, points: [{ destination: '/etc/hosts' }, { destination: '/etc' }] });
    assert.ok(lstatSync(path.join(s.root, 'etc/hosts')).isFile());
  });
});

test('a symlink in the image resolves inside the rootfs: the point is made there', () => {
  withScratch((s) => {
    mkdirSync(path.join(s.root, 'real-etc'));
    symlinkSync('/real-etc', path.join(s.root, 'etc'));
    makeMountPoints({ kind: 'mount-points', root: s.root, points: [{ destination: '/etc/resolv.conf', bindSource: path.join(s.host, 'resolv.conf') }] });
    assert.ok(lstatSync(path.join(s.root, 'real-etc/resolv.conf')).isFile());
  });
});

test('a symlink in the image that names a host directory makes nothing in that directory', () => {
  withScratch((s) => {
    symlinkSync(s.host, path.join(s.root, 'etc'));
    symlinkSync(`../../../../../../../..${s.host}`, path.join(s.root, 'run'));
    const points = [{ destination: '/etc/hostname', bindSource: path.join(s.host, 'resolv.conf') }, { destination: '/etc/proc' }, { destination: '/run/x' }];
    for (const point of points) {
      try {
        makeMountPoints({ kind: 'mount-points', root: s.root, points: [point] });
      } catch {
        // Refusing is fine; making it on the host is not.
      }
    }
    assert.deepEqual(readdirSync(s.host), ['resolv.conf']);
    assert.equal(existsSync(path.join(s.host, 'hostname')), false);
  });
});
