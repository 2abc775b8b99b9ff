// What a create writes, and when. A plain container's record is written once, by apply, before the
// first host action (service.ts register); its allocation reaches the subid state after the request
// (subid-store.ts): the record is what keeps the range. A manager killed -9 between any of these
// leaves nothing after its restart but what a running container holds, and gives no range twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { makeBundle } from '../rig/images.ts';
import { useRuncRootRig } from './runc-root-rig.ts';
import { allocations, assertDisjoint, assertKilledAt, assertNothingLeft, liveUidRange, stateDirFiles, waitForLog, withManagerEnv } from './faults-helpers.ts';

const rig = useRuncRootRig('write-order');
let serial = 0;

/** A plain busybox bundle running sleep: no store volume, so its record is not made durable at once. */
async function newBox(tag: string): Promise<{ id: string; bundle: string }> {
  const id = `${tag}-${++serial}`;
  const b = await makeBundle(path.join(rig.work, id), rig.rootfs, ['sleep', '100000']);
  return { id, bundle: b.bundle };
}

async function runAndAssert(box: { id: string; bundle: string }): Promise<void> {
  const created = await rig.sysrunc(['create', '--bundle', box.bundle, box.id]);
  assert.equal(created.exitCode, 0, created.stderr);
  const started = await rig.sysrunc(['start', box.id]);
  assert.equal(started.exitCode, 0, started.stderr);
}

async function removeBox(box: { id: string; bundle: string }): Promise<void> {
  await rig.sysrunc(['kill', box.id, 'KILL']);
  const out = await rig.sysrunc(['delete', '--force', box.id]);
  assert.equal(out.exitCode, 0, out.stderr);
  rmSync(box.bundle, { recursive: true, force: true });
}

test("a manager killed -9 before writing an answered create's allocation takes the range back from the record at its restart, and gives none of it to the next container", async () => {
  const first = await newBox('answered');
  let mark = 0;
  await withManagerEnv(rig.mgr, { SYSRUNC_TEST_FAULT: 'write:subid.json:before-rename' }, async () => {
    mark = rig.mgr.log().length;
    // The create is answered before the write: it succeeds, and the manager dies at the write after it.
    await runAndAssert(first);
    await waitForLog(rig.mgr, /killing pid \d+ at write:subid\.json:before-rename/, mark);
    assert.equal(allocations(rig.mgr).some((a) => a.id === first.id), false, 'the subid state already had the allocation before the killed write');
    assert.notDeepEqual(stateDirFiles(rig.mgr.stateDir).filter((f) => f.endsWith('.tmp')), [], 'the killed write left no temp file');
  });
  const range = liveUidRange(rig.runcRoot, first.id);
  assert.deepEqual(allocations(rig.mgr).find((a) => a.id === first.id), { id: first.id, uid: range.start, gid: range.start, size: range.size });
  assert.match(rig.mgr.log().slice(mark), new RegExp(`the range of \\\\"${first.id}\\\\" .* was taken back from its container record`));
  assert.deepEqual(stateDirFiles(rig.mgr.stateDir).filter((f) => f.endsWith('.tmp')), [], 'the temp file is still there after the restart');

  const second = await newBox('next');
  await runAndAssert(second);
  const next = liveUidRange(rig.runcRoot, second.id);
  assert.ok(next.start >= range.start + range.size || next.start + next.size <= range.start, `the next container got ${JSON.stringify(next)}, inside ${JSON.stringify(range)}`);
  await removeBox(second);
  await removeBox(first);
  assertDisjoint(allocations(rig.mgr));
  await assertNothingLeft(rig.mgr);
});

test('a manager killed -9 after allocating, before the record is first written, leaves nothing after its restart', async () => {
  const box = await newBox('unwritten');
  await withManagerEnv(rig.mgr, { SYSRUNC_TEST_FAULT: 'create:allocated' }, async () => {
    const mark = rig.mgr.log().length;
    const out = await rig.sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_MGR_WAIT_MS: '0' });
    assertKilledAt(out, 'create:allocated', rig.mgr, mark);
    assert.deepEqual(stateDirFiles(rig.mgr.stateDir).filter((f) => f.includes(box.id)), [], 'the record was written before apply');
    assert.ok(existsSync(path.join(rig.mgr.runDir, 'containers', box.id)), 'the run dir (made before the record is written) is not there: the crash is not at the point this test means');
  });
  rmSync(box.bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr);
});
