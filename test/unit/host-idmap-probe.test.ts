import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { probeIdmapSupport } from '../../src/host/idmap-probe.ts';
import { mountsUnder } from '../../src/host/mount.ts';

const scratch = mkdtempSync('/var/tmp/sysrunc-probe-');

after(() => {
  for (const mp of mountsUnder(scratch).reverse()) execFileSync('umount', ['-l', mp]);
  rmSync(scratch, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = path.join(scratch, name);
  mkdirSync(d, { recursive: true });
  return d;
}

test('tmpfs supports idmapped mounts', () => {
  const mnt = dir('tmpfs');
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
  assert.deepEqual(probeIdmapSupport(mnt), { supported: true });
});

test('ext4 supports idmapped mounts', () => {
  assert.deepEqual(probeIdmapSupport(dir('ext4')), { supported: true });
});

test('overlayfs does not support idmapped mounts, and the reason names it', () => {
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map(dir) as [string, string, string, string];
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  assert.deepEqual(probeIdmapSupport(merged), {
    supported: false,
    reason: `idmapped mounts not supported by filesystem overlay at ${merged}: EINVAL`,
  });
});

test('procfs does not support idmapped mounts, and the reason names it', () => {
  assert.deepEqual(probeIdmapSupport('/proc'), {
    supported: false,
    reason: 'idmapped mounts not supported by filesystem proc at /proc: EINVAL',
  });
});

test('sysfs does not support idmapped mounts, and the reason names it', () => {
  assert.deepEqual(probeIdmapSupport('/sys'), {
    supported: false,
    reason: 'idmapped mounts not supported by filesystem sysfs at /sys: EINVAL',
  });
});

test('a missing path is reported unsupported with the stat error', () => {
  const missing = path.join(scratch, 'missing');
  assert.deepEqual(probeIdmapSupport(missing), {
    supported: false,
    reason: `cannot probe idmapped mount support at ${missing}: stat ${missing}: ENOENT (No such file or directory)`,
  });
});

test('the answer is cached per device', () => {
  const first = probeIdmapSupport(dir('cached-a'));
  assert.equal(probeIdmapSupport(dir('cached-b')), first);
});
