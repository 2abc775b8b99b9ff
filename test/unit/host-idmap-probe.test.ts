import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { probeIdmapSupport } from '../../src/host/idmap-probe.ts';
import { idmappedBindMount, mountsUnder } from '../../src/host/mount.ts';
import { libc } from '../../src/host/libc.ts';
import { createUserNamespaceFd } from '../../src/host/userns.ts';

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

/**
 * A tmpfs at <name>/fs and an idmapped bind of it at <name>/idmapped: the same device (st_dev), but
 * an idmapped mount cannot be idmapped again, so a probe there on its own says unsupported.
 */
function tmpfsWithIdmappedBind(name: string): { fs: string; idmapped: string } {
  const fs = dir(`${name}/fs`);
  const idmapped = dir(`${name}/idmapped`);
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', fs]);
  const map = [{ containerID: 0, hostID: 200000, size: 65536 }];
  const userns = createUserNamespaceFd(map, map);
  try {
    idmappedBindMount(fs, idmapped, userns);
  } finally {
    libc().close(userns);
  }
  assert.equal(statSync(fs).dev, statSync(idmapped).dev);
  return { fs, idmapped };
}

test('an idmapped bind of a tmpfs, probed first, is unsupported (it cannot be idmapped again)', () => {
  const { idmapped } = tmpfsWithIdmappedBind('uncached');
  assert.equal(probeIdmapSupport(idmapped).supported, false);
});

test('the answer is cached per device: a second path on a probed device is not probed again', () => {
  const { fs, idmapped } = tmpfsWithIdmappedBind('cached');
  assert.deepEqual(probeIdmapSupport(fs), { supported: true });
  // A new probe at `idmapped` would fail (test above); the device's cached answer is returned.
  assert.deepEqual(probeIdmapSupport(idmapped), { supported: true });
});
