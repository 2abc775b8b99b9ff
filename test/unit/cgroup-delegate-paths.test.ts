// Which host paths the cgroup-delegate action takes (src/manager/cgroup-delegate.ts): only
// directories below a cgroup (v1 or v2) mount, never a hierarchy's mount itself, never elsewhere.
// Asked of the host's real cgroup mounts; nothing is created.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cgroupMounts } from '../../src/host/cgroups.ts';
import { isBelowCgroupMount } from '../../src/manager/cgroup-delegate.ts';

const hierarchy = cgroupMounts()[0]?.mountpoint;
const noCgroups = hierarchy === undefined && 'no cgroup mount on this host';

test('a new cgroup below a hierarchy\'s mount is taken', { skip: noCgroups }, () => {
  assert.equal(isBelowCgroupMount(path.join(hierarchy ?? '', 'sysrunc-test-never-made', 'child')), true);
});

test('a hierarchy\'s mount itself is refused', { skip: noCgroups }, () => {
  assert.equal(isBelowCgroupMount(hierarchy ?? ''), false);
});

test('a directory on another filesystem is refused', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-cgroup-paths-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(isBelowCgroupMount(path.join(dir, 'child')), false);
});

test('a path that is not normalized or not absolute is refused', { skip: noCgroups }, () => {
  assert.equal(isBelowCgroupMount(`${hierarchy ?? ''}/x/../y`), false);
  assert.equal(isBelowCgroupMount('sys/fs/cgroup/x'), false);
});
