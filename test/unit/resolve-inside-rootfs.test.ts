// resolveInsideRootfs (spec-transform/gather-facts.ts): a path looked up the way the container
// would see it, symlinks followed with absolute targets taken relative to the rootfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { resolveInsideRootfs } from '../../src/spec-transform/gather-facts.ts';
import { dockerdRootfs } from '../fixtures/dockerd-rootfs.ts';

const rootfs = (t: { after: (fn: () => void) => void }): string => dockerdRootfs(t, 'sysrunc-resolve-');

test('a path without symlinks resolves to itself', (t) => {
  assert.equal(resolveInsideRootfs(rootfs(t), '/usr/bin/dockerd'), '/usr/bin/dockerd');
});

test('an absolute symlink is followed inside the rootfs, not on the host', (t) => {
  const dir = rootfs(t);
  symlinkSync('/usr/bin', path.join(dir, 'bin'));
  assert.equal(resolveInsideRootfs(dir, '/bin/dockerd'), '/usr/bin/dockerd');
});

test('a relative symlink is followed from the directory it is in', (t) => {
  const dir = rootfs(t);
  mkdirSync(path.join(dir, 'sbin'));
  symlinkSync('../usr/bin/dockerd', path.join(dir, 'sbin/dockerd'));
  assert.equal(resolveInsideRootfs(dir, '/sbin/dockerd'), '/usr/bin/dockerd');
});

test('a missing component resolves to nothing', (t) => {
  assert.equal(resolveInsideRootfs(rootfs(t), '/usr/lib/missing'), undefined);
});

test('a file used as a directory resolves to nothing', (t) => {
  assert.equal(resolveInsideRootfs(rootfs(t), '/usr/bin/dockerd/more'), undefined);
});

test('a symlink loop resolves to nothing', (t) => {
  const dir = rootfs(t);
  symlinkSync('/b', path.join(dir, 'a'));
  symlinkSync('/a', path.join(dir, 'b'));
  assert.equal(resolveInsideRootfs(dir, '/a/x'), undefined);
});
