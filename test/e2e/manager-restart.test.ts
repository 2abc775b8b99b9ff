// The manager is not in the containers' path once they run: restarting it (cleanly or after
// kill -9) keeps every allocation and record, and a later `docker rm -f` still cleans up. With the
// manager down, a create fails with a message that says how to start it, and leaves nothing behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerId, disjoint, leftovers, leftoversOnDisk, managerList, NOTHING_LEFT, parseIdMap, startE2ERig, subidAllocations, type E2ERig } from './helpers.ts';

let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-mgr-restart');
});
after(async () => rig?.dispose());

async function uidMap(name: string): Promise<string> {
  return (await rig.docker(['exec', name, 'cat', '/proc/self/uid_map'])).stdout;
}

async function listedMappings(id: string): Promise<unknown> {
  const c = (await managerList(rig.mgr)).find((x) => x.id === id);
  return c === undefined ? undefined : { uid: c.uidMappings, gid: c.gidMappings };
}

/** The host uid range the allocator holds for the container, from its persisted state. */
function allocatedRange(id: string): { start: number; size: number } | undefined {
  const a = subidAllocations(rig.mgr).find((x) => x.id === id);
  return a === undefined ? undefined : { start: a.uid, size: a.size };
}

/**
 * The allocator still reserves the container's range: its state holds it, and a container created
 * now gets a range that does not overlap it.
 */
async function assertStillReserved(id: string, map: string): Promise<void> {
  const row = parseIdMap(map)[0];
  assert.notEqual(row, undefined, map);
  const kept = { start: row?.hostID ?? -1, size: row?.size ?? -1 };
  assert.deepEqual(allocatedRange(id), kept, 'the allocator state still holds the running container\'s range');
  const probe = (await rig.run(['--rm', 'bb:local', 'cat', '/proc/self/uid_map'])).stdout;
  const fresh = parseIdMap(probe)[0];
  assert.notEqual(fresh, undefined, probe);
  assert.ok(disjoint([kept, { start: fresh?.hostID ?? -1, size: fresh?.size ?? -1 }]), `a new container got ${probe.trim()}, overlapping the kept ${JSON.stringify(kept)}`);
}

/** Starts the manager again after kill -9 (restart() only signals a live one). */
async function kill9AndStart(): Promise<void> {
  await rig.mgr.kill9();
  await rig.mgr.restart();
}

test('after a SIGTERM restart of the manager, a running container keeps its range', async () => {
  await rig.run(['-d', '--name', 'term-keep', 'bb:local', 'sleep', '1000']);
  const id = await containerId(rig.d, 'term-keep');
  const [mapBefore, listedBefore] = [await uidMap('term-keep'), await listedMappings(id)];
  assert.notEqual(listedBefore, undefined);
  await rig.mgr.restart();
  assert.equal(await uidMap('term-keep'), mapBefore);
  assert.deepEqual(await listedMappings(id), listedBefore);
  await assertStillReserved(id, mapBefore);
});

test('after kill -9 and a new start of the manager, a running container keeps its range', async () => {
  await rig.run(['-d', '--name', 'kill-keep', 'bb:local', 'sleep', '1000']);
  const id = await containerId(rig.d, 'kill-keep');
  const [mapBefore, listedBefore] = [await uidMap('kill-keep'), await listedMappings(id)];
  assert.notEqual(listedBefore, undefined);
  await kill9AndStart();
  assert.equal(await uidMap('kill-keep'), mapBefore);
  assert.deepEqual(await listedMappings(id), listedBefore);
  await assertStillReserved(id, mapBefore);
});

test('a container created before a SIGTERM restart is cleaned up by docker rm -f afterwards', async () => {
  await rig.run(['-d', '--name', 'term-rm', 'bb:local', 'sleep', '1000']);
  const id = await containerId(rig.d, 'term-rm');
  await rig.mgr.restart();
  await rig.docker(['rm', '-f', 'term-rm']);
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});

test('a container created before a kill -9 of the manager is cleaned up by docker rm -f afterwards', async () => {
  await rig.run(['-d', '--name', 'kill-rm', 'bb:local', 'sleep', '1000']);
  const id = await containerId(rig.d, 'kill-rm');
  await kill9AndStart();
  await rig.docker(['rm', '-f', 'kill-rm']);
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});

test('a container removed while the manager is down is cleaned up when the manager starts again', async () => {
  await rig.run(['-d', '--name', 'rm-while-down', 'bb:local', 'sleep', '1000']);
  const id = await containerId(rig.d, 'rm-while-down');
  await rig.mgr.stop();
  try {
    await rig.docker(['rm', '-f', 'rm-while-down']);
  } finally {
    await rig.mgr.restart();
  }
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});

test('a docker run that arrives while the manager restarts waits for it and succeeds', async () => {
  await rig.mgr.stop();
  const started = Date.now();
  const running = rig.run(['--rm', 'bb:local', 'cat', '/proc/self/uid_map'], { reject: false });
  try {
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await rig.mgr.restart();
  }
  const r = await running;
  assert.equal(r.exitCode, 0, r.stderr);
  assert.ok((parseIdMap(r.stdout)[0]?.hostID ?? 0) > 0, r.stdout);
  assert.ok(Date.now() - started >= 1500);
});

test('with the manager stopped, docker run fails naming the socket and how to start the manager', async () => {
  await rig.mgr.stop();
  try {
    const r = await rig.run(['--rm', 'bb:local', 'true'], { reject: false });
    assert.notEqual(r.exitCode, 0);
    assert.ok(r.stderr.includes(`sysrunc-mgr is not reachable at ${rig.mgr.socket}`), r.stderr);
    assert.match(r.stderr, /start it with "systemctl start sysrunc-mgr" or "sysrunc-mgr --socket [^"]+"/);
  } finally {
    await rig.mgr.restart();
  }
});

test('with the manager killed (stale socket file), docker run fails naming the socket and how to start the manager', async () => {
  await rig.mgr.kill9();
  try {
    const r = await rig.run(['--rm', 'bb:local', 'true'], { reject: false });
    assert.notEqual(r.exitCode, 0);
    assert.ok(r.stderr.includes(`sysrunc-mgr is not reachable at ${rig.mgr.socket}`), r.stderr);
    assert.match(r.stderr, /start it with/);
  } finally {
    await rig.mgr.restart();
  }
});

test('a docker run that fails because the manager is down leaves no mount, record, run dir or allocation', async () => {
  await rig.mgr.stop();
  let id: string;
  try {
    const r = await rig.run(['--name', 'mgr-down', 'bb:local', 'true'], { reject: false });
    assert.notEqual(r.exitCode, 0);
    id = await containerId(rig.d, 'mgr-down');
    assert.deepEqual(leftoversOnDisk(rig.mgr, [id]), { mounts: [], runDirEntries: [], recordFiles: [], allocations: [] });
  } finally {
    await rig.mgr.restart();
  }
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});
