// Issue 9: containers that join another sysrunc container's namespaces (docker --network, --ipc,
// --pid container:X) join its user namespace too, so their root administers what they share; the
// shared range lives until the last of them is gone; namespaces of containers sysrunc did not
// start are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerId, disjoint, leftovers, managerList, NOTHING_LEFT, parseIdMap, startE2ERig, subidAllocations, type E2ERig } from './helpers.ts';
import type { IdMapping } from '../../src/manager-api/v1.ts';
import { readUntil } from '../helpers/manager-state.ts';

let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-shared');
  await rig.run(['-d', '--name', 'owner', '--ipc', 'shareable', 'bb:local', 'sh', '-c', 'echo owner-was-here > /dev/shm/mark; exec sleep 100000']);
});
after(async () => rig?.dispose());

async function exec(name: string, script: string): Promise<string> {
  return (await rig.docker(['exec', name, 'sh', '-c', script])).stdout.trim();
}

const nsOf = (name: string, ns: string) => exec(name, `readlink /proc/self/ns/${ns}`);

test('--network container:X runs in X\'s user namespace', async () => {
  await rig.run(['-d', '--name', 'net-joiner', '--network', 'container:owner', 'bb:local', 'sleep', '100000']);
  assert.equal(await nsOf('net-joiner', 'user'), await nsOf('owner', 'user'));
  assert.equal(await nsOf('net-joiner', 'net'), await nsOf('owner', 'net'));
  assert.notEqual((await exec('net-joiner', 'cat /proc/self/uid_map')).split(/\s+/)[1], '0', 'the shared user namespace maps container root to host root');
});

test('--network container:X: the joiner\'s root can bring a link of the shared network down and up', async () => {
  const r = await rig.docker(['exec', 'net-joiner', 'sh', '-c', 'ip link set lo down && ip link set lo up && echo ok'], { reject: false });
  assert.equal(r.stdout.trim(), 'ok', r.stderr);
});

test('--ipc container:X runs in X\'s user namespace and sees X\'s IPC objects', async () => {
  await rig.run(['-d', '--name', 'ipc-joiner', '--ipc', 'container:owner', 'bb:local', 'sleep', '100000']);
  assert.equal(await nsOf('ipc-joiner', 'user'), await nsOf('owner', 'user'));
  assert.equal(await nsOf('ipc-joiner', 'ipc'), await nsOf('owner', 'ipc'));
  assert.equal(await exec('ipc-joiner', 'cat /dev/shm/mark'), 'owner-was-here');
});

test('--pid container:X runs in X\'s user namespace and ps shows X\'s processes', async () => {
  await rig.run(['-d', '--name', 'pid-joiner', '--pid', 'container:owner', 'bb:local', 'sleep', '100001']);
  assert.equal(await nsOf('pid-joiner', 'user'), await nsOf('owner', 'user'));
  const ps = await exec('pid-joiner', 'ps -o args');
  assert.match(ps, /sleep 100000\b/, ps);
  assert.match(ps, /sleep 100001\b/, ps);
});

test('the joiners hold no range of their own: one allocation for the owner and all of them', async () => {
  assert.deepEqual(subidAllocations(rig.mgr).map((a) => a.id), [await containerId(rig.d, 'owner')]);
});

test('joining the namespace of a container sysrunc did not start is refused with one line naming the namespace', async () => {
  await rig.docker(['run', '-d', '--runtime=runc', '--name', 'plain', '--ipc', 'shareable', 'bb:local', 'sleep', '100000']);
  const r = await rig.run(['--rm', '--ipc', 'container:plain', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /linux\.namespaces ipc path \/proc\/\d+\/ns\/ipc is not a namespace of a container sysrunc started/);
  await rig.docker(['rm', '-f', 'plain']);
});

test('the shared range stays while a joiner runs after its owner is removed', async () => {
  const owner = await containerId(rig.d, 'owner');
  await rig.docker(['rm', '-f', 'owner', 'ipc-joiner', 'pid-joiner']);
  // The manager's own release of the owner (no sweep forced: that would hide a release it missed).
  const records = await readUntil(() => managerList(rig.mgr), (list) => !list.some((r) => r.id === owner));
  assert.equal(records.some((r) => r.id === owner), false, 'the owner is still recorded');
  assert.deepEqual(subidAllocations(rig.mgr).map((a) => a.id), [owner], 'the range went with its owner while a joiner still uses it');
  assert.equal(await exec('net-joiner', 'echo alive'), 'alive');
  // The range is really held, not only listed: a new container gets one that does not overlap it.
  const joinerMap = parseIdMap(await exec('net-joiner', 'cat /proc/self/uid_map'));
  const newcomer = parseIdMap((await rig.run(['--rm', 'bb:local', 'cat', '/proc/self/uid_map'])).stdout);
  assert.equal(joinerMap.length, 1);
  assert.equal(newcomer.length, 1);
  const range = (m: IdMapping[]) => ({ start: m[0]?.hostID ?? 0, size: m[0]?.size ?? 0 });
  assert.ok(disjoint([range(joinerMap), range(newcomer)]), `the joiner's ${JSON.stringify(joinerMap)} and a new container's ${JSON.stringify(newcomer)} overlap`);
});

test('removing the owner first, then the joiner, leaves no allocation, mount or record behind', async () => {
  await rig.docker(['rm', '-f', 'net-joiner']);
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
});
