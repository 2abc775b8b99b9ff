// Rootfs.exists (src/host/in-root.ts): a path looked up as the container would see it, in one
// openat2 resolved in root: an image's symlinks never reach the host's files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { withRootfsSync } from '../../src/host/in-root.ts';
import { dockerdRootfs } from '../fixtures/dockerd-rootfs.ts';

const rootfs = (t: { after: (fn: () => void) => void }): string => dockerdRootfs(t, 'sysrunc-in-root-exists-');

test('a file in the rootfs exists, a missing one does not', (t) => {
  withRootfsSync(rootfs(t), (r) => {
    assert.equal(r.exists('/usr/bin/dockerd'), true);
    assert.equal(r.exists('/usr/bin/podman'), false);
    assert.equal(r.exists('/usr/bin/dockerd/below-a-file'), false);
  });
});

test('an absolute symlink is followed inside the rootfs', (t) => {
  const dir = rootfs(t);
  symlinkSync('/usr/bin', path.join(dir, 'bin'));
  withRootfsSync(dir, (r) => assert.equal(r.exists('/bin/dockerd'), true));
});

test('a symlink to a host path that the rootfs lacks does not exist, though the host has it', (t) => {
  const dir = rootfs(t);
  symlinkSync('/etc/hostname', path.join(dir, 'escape'));
  symlinkSync('../../../../../../etc/hostname', path.join(dir, 'usr/bin/climb'));
  withRootfsSync(dir, (r) => {
    assert.equal(r.exists('/escape'), false);
    assert.equal(r.exists('/usr/bin/climb'), false);
  });
});
