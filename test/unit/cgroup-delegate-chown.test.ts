// What the cgroup-delegate action hands the container's root (src/manager/cgroup-delegate.ts): its
// own cgroup directory in every hierarchy, with the files that manage children and membership, and
// never a limit file. Real cgroups on the host's mounts, made and removed by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { cgroupMounts, DELEGATED_FILES } from '../../src/host/cgroups.ts';
import { delegateCgroups, undelegateCgroups } from '../../src/manager/cgroup-delegate.ts';

const OWNER = { uid: 3_000_000, gid: 3_000_001 };
const mounts = cgroupMounts().filter((m) => existsSync(m.mountpoint));
const noCgroups = mounts.length === 0 && 'no cgroup mount on this host';

test('every hierarchy\'s new cgroup and its delegated files belong to the container\'s root, its other files to host root', { skip: noCgroups }, (t) => {
  const parents = mounts.map((m) => path.join(m.mountpoint, `sysrunc-unit-delegate-${process.pid}`));
  const dirs = parents.map((p) => path.join(p, 'container'));
  t.after(() => undelegateCgroups([...parents, ...dirs]));
  delegateCgroups(dirs, OWNER);
  for (const dir of dirs) {
    const st = statSync(dir);
    assert.deepEqual([st.uid, st.gid], [OWNER.uid, OWNER.gid], dir);
    for (const name of readdirSync(dir)) {
      const file = statSync(path.join(dir, name));
      const expected = (DELEGATED_FILES as readonly string[]).includes(name) ? [OWNER.uid, OWNER.gid] : [0, 0];
      assert.deepEqual([file.uid, file.gid], expected, path.join(dir, name));
    }
  }
});

test('a cgroup-delegate outside a cgroup file system is refused and creates nothing', () => {
  const dir = path.join('/run', `sysrunc-unit-delegate-${process.pid}`, 'container');
  assert.throws(() => delegateCgroups([dir], OWNER), /not a cgroup below a cgroup or cgroup2 mount/);
  assert.equal(existsSync(path.dirname(dir)), false);
});
