// Crash and failure injection (SYSRUNC_TEST_FAULT, src/testing/fault.ts): the shim killed -9 after
// each step of create and during delete, the manager killed -9 mid-request, runc missing or
// failing, the state disk full. After each one the next create and delete work, a sweep leaves
// nothing (mounts, allocations, records, files under the state and run dirs), and no range is
// given to two live containers. Containers are driven through dist/sysrunc directly, as
// containerd's shim drives runc, so each call can carry its own fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { makeBundle } from '../rig/images.ts';
import type { Outcome } from '../oci-conformance/fixture.ts';
import { useRuncRootRig } from './runc-root-rig.ts';
import { mountsUnder } from '../rig/proc.ts';
import { allocations, assertDisjoint, assertKilledAt as assertKilledAtFor, assertNothingLeft, liveUidRange, stateDirFiles, waitForLog as waitForLogOf, withManagerEnv as withManagerEnvOf, type Allocation } from './faults-helpers.ts';

const rig = useRuncRootRig('faults');
const RUNC_ROOT = rig.runcRoot;
const sysrunc = rig.sysrunc;
let serial = 0;

const waitForLog = (re: RegExp, from: number): Promise<void> => waitForLogOf(rig.mgr, re, from);
const assertKilledAt = (out: Outcome, point: string, logMark: number): void => assertKilledAtFor(out, point, rig.mgr, logMark);

interface Box {
  readonly id: string;
  readonly bundle: string;
}

/**
 * A busybox bundle running `sleep`, with /var/lib/docker in its rootfs: the manager gives it a store
 * volume (a host dir and a mount) besides the idmapped rootfs, and its delete is the synchronous one.
 */
async function newBox(tag: string): Promise<Box> {
  const id = `${tag}-${++serial}`;
  const b = await makeBundle(path.join(rig.work, id), rig.rootfs, ['sleep', '100000']);
  mkdirSync(path.join(b.rootfs, 'var/lib/docker'), { recursive: true });
  return { id, bundle: b.bundle };
}

/**
 * What `docker rm` of a container whose create failed does, once the manager has released it: the
 * release of a container with a store volume syncs it out into the rootfs, and removing the rootfs
 * under a running sync-out fails (ENOTEMPTY), as dockerd's removal of a layer would.
 */
async function removeLayerOnceReleased(box: Box): Promise<void> {
  await waitForLog(new RegExp(`"id":"${box.id}"[^\\n]*"msg":"released`), 0);
  rmSync(box.bundle, { recursive: true, force: true });
}

/** `create` then `start`: a running container. */
async function run(box: Box, env: Record<string, string> = {}): Promise<Outcome> {
  const created = await sysrunc(['create', '--bundle', box.bundle, box.id], env);
  if (created.exitCode !== 0) return created;
  return sysrunc(['start', box.id]);
}

/** What `docker rm -f` does: kill, delete, and the layer (here the bundle) removed. */
async function remove(box: Box, env: Record<string, string> = {}): Promise<Outcome> {
  await sysrunc(['kill', box.id, 'KILL']);
  const out = await sysrunc(['delete', '--force', box.id], env);
  rmSync(box.bundle, { recursive: true, force: true });
  return out;
}

/**
 * The next create and delete work, the new container's range is disjoint from every other
 * allocation, and afterwards nothing of it is left.
 */
async function assertNextCreateAndDeleteWork(): Promise<void> {
  const box = await newBox('next');
  const out = await run(box);
  assert.equal(out.exitCode, 0, `the next create failed: ${out.stderr}`);
  const range = liveUidRange(RUNC_ROOT, box.id);
  const held = allocations(rig.mgr);
  assert.deepEqual(
    held.find((a) => a.id === box.id),
    { id: box.id, uid: range.start, gid: range.start, size: range.size },
    'the allocator holds the range the container runs with',
  );
  assertDisjoint(held);
  const removed = await remove(box);
  assert.equal(removed.exitCode, 0, removed.stderr);
  await assertNothingLeft(rig.mgr, box.id);
}

const withManagerEnv = (env: Record<string, string>, fn: () => Promise<void>): Promise<void> => withManagerEnvOf(rig.mgr, env, fn);

const CREATE_STEPS = [
  ['create:allocated', 'the allocation and record'],
  ['create:volumes', 'the store volume mount'],
  ['create:mount-1', 'the first host action (the idmapped rootfs mount)'],
  ['create:mount-2', 'the second host action'],
  ['create:config-written', 'the prepared config write'],
  ['create:prepared', 'the whole prepare, before the answer'],
] as const;

for (const [point, step] of CREATE_STEPS) {
  test(`the shim killed -9 after ${step} leaves nothing once swept, and the next create and delete work`, async () => {
    const box = await newBox('shim');
    await withManagerEnv({ SYSRUNC_TEST_FAULT: `caller@${point}` }, async () => {
      const mark = rig.mgr.log().length;
      assertKilledAt(await sysrunc(['create', '--bundle', box.bundle, box.id]), `${point}`, mark);
      assert.match(rig.mgr.log().slice(mark), new RegExp(`killing caller pid \\d+ and its children at ${point}`));
      await removeLayerOnceReleased(box);
      await assertNothingLeft(rig.mgr);
    });
    await assertNextCreateAndDeleteWork();
  });

  test(`the manager killed -9 at ${step} of a create leaves nothing after its restart, and the next create and delete work`, async () => {
    const box = await newBox('mgr');
    await withManagerEnv({ SYSRUNC_TEST_FAULT: point }, async () => {
      // Not waiting for a new manager (the next test does): the call fails at once.
      const mark = rig.mgr.log().length;
      const out = await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_MGR_WAIT_MS: '0' });
      assertKilledAt(out, point, mark);
    });
    await removeLayerOnceReleased(box);
    await assertNothingLeft(rig.mgr);
    await assertNextCreateAndDeleteWork();
  });
}

test('a container whose layer is removed while the manager is down, after it died mid-create, is released whole at its restart', async () => {
  const box = await newBox('gone');
  rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'create:mount-1' });
  await rig.mgr.restart();
  try {
    const mark = rig.mgr.log().length;
    assertKilledAt(await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_MGR_WAIT_MS: '0' }), 'create:mount-1', mark);
    rmSync(box.bundle, { recursive: true, force: true });
  } finally {
    rig.mgr.setEnv({});
    await rig.mgr.restart();
  }
  assert.equal(existsSync(box.bundle), false, 'the release recreated the removed layer');
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a manager killed -9 in the middle of a state write leaves no temp file after its restart', async () => {
  const box = await newBox('tmp');
  await withManagerEnv({ SYSRUNC_TEST_FAULT: 'write:subid.json:before-rename' }, async () => {
    const mark = rig.mgr.log().length;
    assertKilledAt(await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_MGR_WAIT_MS: '0' }), 'write:subid.json:before-rename', mark);
    assert.notDeepEqual(stateDirFiles(rig.mgr.stateDir), [], 'the killed write left its temp file');
  });
  rmSync(box.bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a create in flight when the manager is killed -9 is sent again to the new manager, and succeeds', async () => {
  const box = await newBox('resent');
  rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'create:mount-1' });
  await rig.mgr.restart();
  const mark = rig.mgr.log().length;
  const creating = run(box);
  try {
    await waitForLog(/killing pid \d+ at create:mount-1/, mark);
  } finally {
    rig.mgr.setEnv({});
    await rig.mgr.restart();
  }
  const out = await creating;
  assert.equal(out.exitCode, 0, out.stderr);
  const range = liveUidRange(RUNC_ROOT, box.id);
  assert.deepEqual(allocations(rig.mgr).find((a) => a.id === box.id), { id: box.id, uid: range.start, gid: range.start, size: range.size });
  assertDisjoint(allocations(rig.mgr));
  assert.equal((await remove(box)).exitCode, 0);
  await assertNothingLeft(rig.mgr);
});

test('a manager killed -9 while it holds a user-namespace child is replaced at once, and the caller of the request in flight sees its connection end', async () => {
  const box = await newBox('userns');
  rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'userns:cloned' });
  await rig.mgr.restart();
  // Not sent again (that is the test above): its end shows that the dead manager's fds are closed.
  const mark = rig.mgr.log().length;
  const creating = sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_MGR_WAIT_MS: '0' });
  try {
    await waitForLog(/killing pid \d+ at userns:cloned/, mark);
  } finally {
    rig.mgr.setEnv({});
    await rig.mgr.restart();
  }
  // The child shared the dead manager's fd table: its listening socket and the caller's connection.
  assert.match(rig.mgr.log(), /killed a user-namespace helper a killed sysrunc-mgr left holding its socket/);
  assertKilledAt(await creating, 'userns:cloned', mark);
  rmSync(box.bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('parallel creates across a kill -9 and restart of the manager all succeed, with disjoint ranges', async () => {
  const boxes = await Promise.all(Array.from({ length: 16 }, () => newBox('burst')));
  const before = allocations(rig.mgr).length;
  const runs = boxes.map((box) => run(box));
  while (allocations(rig.mgr).length < before + 3) await new Promise((r) => setTimeout(r, 10));
  await rig.mgr.kill9();
  await rig.mgr.restart();
  const outs = await Promise.all(runs);
  try {
    assert.deepEqual(outs.filter((o) => o.exitCode !== 0).map((o) => o.stderr.trim()), []);
    const held = allocations(rig.mgr);
    assertDisjoint(held);
    for (const box of boxes) assert.equal(held.find((a) => a.id === box.id)?.uid, liveUidRange(RUNC_ROOT, box.id).start, `${box.id} runs with the range the allocator holds`);
  } finally {
    for (const box of boxes) await remove(box);
  }
  await assertNothingLeft(rig.mgr);
});

test('the per-call binary killed -9 once the manager answered leaves nothing once swept', async () => {
  const box = await newBox('call');
  const mark = rig.mgr.log().length;
  assertKilledAt(await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_TEST_FAULT: 'create:answered' }), 'create:answered', mark);
  await removeLayerOnceReleased(box);
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('the launcher killed -9 just before it becomes runc leaves nothing once swept', async () => {
  const box = await newBox('launcher');
  const mark = rig.mgr.log().length;
  assertKilledAt(await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_TEST_FAULT: 'create:before-runc' }), 'create:before-runc', mark);
  await removeLayerOnceReleased(box);
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('the launcher killed -9 during delete, after runc deleted the container, leaves nothing once the layer is gone', async () => {
  const box = await newBox('delete');
  assert.equal((await run(box)).exitCode, 0);
  await sysrunc(['kill', box.id, 'KILL']);
  const mark = rig.mgr.log().length;
  const out = await sysrunc(['delete', '--force', box.id], { SYSRUNC_TEST_FAULT: 'delete:after-runc' });
  assertKilledAt(out, 'delete:after-runc', mark);
  await removeLayerOnceReleased(box);
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a delete whose manager is killed -9 in the middle of the release finishes with the new manager, leaving nothing', async () => {
  const box = await newBox('release');
  assert.equal((await run(box)).exitCode, 0);
  rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'delete:undone' });
  await rig.mgr.restart();
  const mark = rig.mgr.log().length;
  const removing = remove(box);
  try {
    await waitForLog(/killing pid \d+ at delete:undone/, mark);
  } finally {
    rig.mgr.setEnv({});
    await rig.mgr.restart();
  }
  const out = await removing;
  assert.equal(out.exitCode, 0, out.stderr);
  assert.equal(out.stderr, '', 'the delete warned');
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a runc that is missing fails the create naming it, and leaves nothing', async () => {
  const box = await newBox('no-runc');
  const missing = path.join(rig.work, 'no-such-runc');
  const out = await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_RUNTIME: missing });
  assert.notEqual(out.exitCode, 0);
  assert.ok(out.stderr.includes(missing), out.stderr);
  rmSync(box.bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a runc that fails after the manager prepared the container leaves nothing once swept', async () => {
  const box = await newBox('bad-runc');
  const failing = path.join(rig.work, 'failing-runc');
  writeFileSync(failing, '#!/bin/sh\necho "failing-runc: refusing $*" >&2\nexit 1\n');
  chmodSync(failing, 0o755);
  const out = await sysrunc(['create', '--bundle', box.bundle, box.id], { SYSRUNC_RUNTIME: failing });
  assert.equal(out.exitCode, 1);
  assert.match(out.stderr, /failing-runc: refusing/);
  await removeLayerOnceReleased(box);
  await assertNothingLeft(rig.mgr);
  await assertNextCreateAndDeleteWork();
});

test('a manager restarted with 50 containers running keeps every allocation, and gives a new one a disjoint range', async () => {
  const boxes = await Promise.all(Array.from({ length: 50 }, () => newBox('fifty')));
  for (const box of boxes) assert.equal((await run(box)).exitCode, 0);
  const before: Allocation[] = allocations(rig.mgr);
  assert.equal(before.length, 50);
  await rig.mgr.kill9();
  await rig.mgr.restart();
  assert.deepEqual(allocations(rig.mgr), before, 'the allocator state after the restart');
  const live = boxes.map((box) => ({ id: box.id, ...liveUidRange(RUNC_ROOT, box.id) }));
  for (const r of live) assert.equal(before.find((a) => a.id === r.id)?.uid, r.start, `${r.id} runs with the range the allocator holds`);
  // The file above is the one written before the restart; what the new manager holds shows in the
  // state it writes with its next allocation, and in the range that allocation gets.
  const next = await newBox('after-restart');
  assert.equal((await run(next)).exitCode, 0);
  const after = allocations(rig.mgr);
  assert.deepEqual(after.filter((a) => a.id !== next.id), before, 'the new manager still holds all 50 ranges');
  const fresh = liveUidRange(RUNC_ROOT, next.id);
  for (const r of live) assert.ok(fresh.start + fresh.size <= r.start || r.start + r.size <= fresh.start, `the new container got ${JSON.stringify(fresh)}, overlapping ${r.id}'s ${JSON.stringify(r)}`);
  assert.equal((await remove(next)).exitCode, 0);
  for (const box of boxes) assert.equal((await remove(box)).exitCode, 0);
  await assertNothingLeft(rig.mgr);
});

/** A manager whose state dir is on a 1 MiB tmpfs of the test's own, and a way to fill that disk. */
async function withSmallStateDisk(tag: string, fn: (small: TestManager, fill: () => void, unfill: () => void) => Promise<void>): Promise<void> {
  const disk = path.join(rig.work, `small-state-${tag}`);
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0711', 'rel-faults-state', disk]);
  const filler = path.join(disk, 'filler');
  let small: TestManager | undefined;
  try {
    small = await startTestManager({ name: `faults-${tag}`, stateDir: path.join(disk, 'state') });
    const fill = () => {
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        // ENOSPC: the disk is full, as wanted
      }
    };
    await fn(small, fill, () => rmSync(filler, { force: true }));
  } finally {
    await small?.dispose();
    for (const m of mountsUnder([disk]).reverse()) execFileSync('umount', ['-l', m]);
  }
}

test('a full state disk fails the create with a one-line error naming the state file, leaves nothing, and the next create works once there is space', async () => {
  await withSmallStateDisk('full', async (small, fill, unfill) => {
    fill();
    const env = { SYSRUNC_MGR_SOCKET: small.socket };
    const box = await newBox('full');
    const out = await sysrunc(['create', '--bundle', box.bundle, box.id], env);
    assert.notEqual(out.exitCode, 0);
    assert.match(out.stderr, new RegExp(`write ${small.stateDir}/\\S+: ENOSPC`));
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    unfill();
    await assertNothingLeft(small);
    assert.equal((await run(box, env)).exitCode, 0);
    assert.equal((await remove(box, env)).exitCode, 0);
    await assertNothingLeft(small);
  });
});

test('a state disk that fills while a container runs: its delete works, and the manager releases all of it once there is space', async () => {
  await withSmallStateDisk('full-delete', async (small, fill, unfill) => {
    const env = { SYSRUNC_MGR_SOCKET: small.socket };
    const box = await newBox('full-delete');
    assert.equal((await run(box, env)).exitCode, 0);
    fill();
    const out = await remove(box, env);
    assert.equal(out.exitCode, 0, out.stderr);
    // The manager could not record the release (runc's delete stands): one warning naming the file.
    assert.match(out.stderr, new RegExp(`^sysrunc: warning: delete ${box.id}: release: write ${small.stateDir}/\\S+: ENOSPC[^\\n]*\\n$`));
    assert.equal(rig.runcIds().includes(box.id), false, 'runc still has the container');
    unfill();
    await assertNothingLeft(small);
  });
});
