// Issue 18: kernels before 6.8 have no `lowerdir+`. The manager is forced to their way here
// (SYSRUNC_MGR_OVERLAY_LOWERDIR=legacy: one colon-joined lowerdir= through mount(2), layers named
// relative to the run dir), so that this 6.18 host exercises what a 6.1 kernel gets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startE2ERig, type E2ERig, inspect } from './helpers.ts';
import { readMountInfo } from '../../src/host/mount.ts';

let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-overlay-legacy', { managerEnv: { SYSRUNC_MGR_OVERLAY_LOWERDIR: 'legacy' } });
});

after(async () => {
  await rig.dispose();
});

/** The reason the manager logged for the container's ownership mode. */
function ownershipOf(id: string): { mode?: string; reason?: string } {
  for (const line of rig.mgr.log().split('\n')) {
    if (!line.includes(id) || !line.includes('registered container')) continue;
    const entry = JSON.parse(line) as { ownership?: { mode?: string; reason?: string } };
    if (entry.ownership) return entry.ownership;
  }
  return {};
}

function superOptionsAt(mountpoint: string): string {
  return readMountInfo().filter((m) => m.mountPoint === mountpoint && m.fsType === 'overlay').at(-1)?.superOptions ?? '';
}

for (const [mode, extra] of [['idmap', []], ['clone', ['--runtime=sysrunc-clone']]] as const) {
  test(`${mode}: the rootfs overlay is mounted with one colon-joined lowerdir=, image files root-owned inside, and the manager says why`, async () => {
    const id = (await rig.run(['-d', ...extra, 'bb:local', 'sh', '-c', 'echo kept > /kept; exec sleep 1000'])).stdout.trim();
    try {
      assert.equal((await rig.docker(['exec', id, 'stat', '-c', '%u:%g', '/bin/busybox', '/kept'])).stdout, '0:0\n0:0');
      const merged = await inspect(rig.d, id, '{{.GraphDriver.Data.MergedDir}}');
      const options = superOptionsAt(merged);
      assert.match(options, /(^|,)lowerdir=/);
      assert.doesNotMatch(options, /lowerdir\+=/);
      assert.equal(ownershipOf(id).mode, mode);
      assert.match(ownershipOf(id).reason ?? '', /overlay: colon-joined lowerdir= forced by SYSRUNC_MGR_OVERLAY_LOWERDIR=legacy/);
    } finally {
      await rig.docker(['rm', '-f', id]);
    }
  });
}

// 45 of dockerd's absolute layer paths (~95 bytes each) would not fit a page.
test('idmap: an image of 46 layers still fits one mount(2) page (layers named relative to the run dir)', async () => {
  const steps = Array.from({ length: 45 }, (_, i) => `RUN echo ${i} > /layer-${i}`).join('\n');
  await rig.docker(['build', '-t', 'bb-layers:local', '-'], { input: `FROM bb:local\n${steps}\n` });
  const r = await rig.run(['--rm', 'bb-layers:local', 'sh', '-c', 'cat /layer-0 /layer-44; stat -c %u /layer-30']);
  assert.equal(r.stdout, '0\n44\n0');
});
