// Issue 3, common subid mode: every container shares the one range the manager hands out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerId, leftovers, managerList, NOTHING_LEFT, parseIdMap, startE2ERig, type E2ERig } from './helpers.ts';

let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-userns-common', { mode: 'common' });
});
after(async () => rig?.dispose());

async function uidMapOf(name: string): Promise<string> {
  return (await rig.docker(['exec', name, 'cat', '/proc/self/uid_map'])).stdout;
}

test('a container maps 0 to a non-root host base, 65536 ids', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'cat', '/proc/self/uid_map']);
  const rows = parseIdMap(r.stdout);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.containerID, 0);
  assert.ok((rows[0]?.hostID ?? 0) > 0);
  assert.equal(rows[0]?.size, 65536);
});

test('two containers running at once get the same range', async () => {
  await rig.run(['-d', '--name', 'common-a', 'bb:local', 'sleep', '1000']);
  await rig.run(['-d', '--name', 'common-b', 'bb:local', 'sleep', '1000']);
  const [a, b] = [parseIdMap(await uidMapOf('common-a')), parseIdMap(await uidMapOf('common-b'))];
  assert.deepEqual(a, b);
  const ids = [await containerId(rig.d, 'common-a'), await containerId(rig.d, 'common-b')];
  const listed = await managerList(rig.mgr);
  assert.deepEqual(
    ids.map((id) => listed.find((c) => c.id === id)?.uidMappings),
    [a, a],
  );
});

test('removing one container leaves the other running with the shared range', async () => {
  await rig.run(['-d', '--name', 'common-c', 'bb:local', 'sleep', '1000']);
  await rig.run(['-d', '--name', 'common-d', 'bb:local', 'sleep', '1000']);
  const before = await uidMapOf('common-d');
  const idC = await containerId(rig.d, 'common-c');
  await rig.docker(['rm', '-f', 'common-c']);
  assert.deepEqual(await leftovers(rig.mgr, [idC]), NOTHING_LEFT);
  assert.equal(await uidMapOf('common-d'), before);
  assert.equal((await rig.docker(['exec', 'common-d', 'echo', 'still-here'])).stdout, 'still-here');
});

test('once every container is removed, nothing is left: no record, mount, run dir or allocation', async () => {
  await rig.run(['-d', '--name', 'common-e', 'bb:local', 'sleep', '1000']);
  const all = (await rig.docker(['ps', '-aq'])).stdout.split('\n').filter((s) => s !== '');
  await rig.docker(['rm', '-f', ...all]);
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
});
