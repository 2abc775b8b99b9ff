// Issue 3 at scale: 50 containers created concurrently each get their own range, and removing them
// all concurrently gives everything back (allocations, mounts, run dirs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MOUNT_NS_LOCK_FILE } from '../../src/host/mount-ns-lock.ts';
import { mountsUnder } from '../rig/proc.ts';
import { disjoint, inPool, managerList, parseIdMap, startE2ERig, subidAllocations, type E2ERig } from './helpers.ts';

const COUNT = 50;
/** docker runs in flight at once: genuinely concurrent, without drowning a 2-core machine. */
const CONCURRENCY = 10;
const names = Array.from({ length: COUNT }, (_, i) => `scale-${String(i).padStart(2, '0')}`);
const ids = new Map<string, string>();
let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-scale');
});
after(async () => rig?.dispose());

/** Every file and directory below `dir`, relative to it. */
function walk(dir: string, rel = ''): string[] {
  if (!existsSync(path.join(dir, rel))) return [];
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(rel, e.name);
    return e.isDirectory() ? [p, ...walk(dir, p)] : [p];
  });
}

test(`${COUNT} concurrent docker run -d all start and run`, async () => {
  const results = await inPool(names, CONCURRENCY, (name) =>
    rig.run(['-d', '--name', name, 'bb:local', 'sleep', '1000'], { reject: false, timeoutMs: 180_000 }),
  );
  const failed = results.map((r, i) => ({ name: names[i], ...r })).filter((r) => r.exitCode !== 0);
  assert.deepEqual(failed, []);
  results.forEach((r, i) => ids.set(names[i] as string, r.stdout.trim()));
  const running = await rig.docker(['ps', '-q', '--no-trunc', '--filter', 'status=running']);
  assert.equal(running.stdout.split('\n').filter((s) => s !== '').length, COUNT);
});

test(`while they run, the manager lists ${COUNT} records with disjoint ranges`, async () => {
  const listed = await managerList(rig.mgr);
  assert.deepEqual(listed.map((c) => c.id).sort(), [...ids.values()].sort());
  for (const kind of ['uidMappings', 'gidMappings'] as const) {
    const ranges = listed.map((c) => {
      assert.equal(c[kind].length, 1, `${c.id}: ${JSON.stringify(c[kind])}`);
      const m = c[kind][0] as { hostID: number; size: number };
      return { start: m.hostID, size: m.size };
    });
    assert.ok(disjoint(ranges), `${kind} overlap: ${JSON.stringify(ranges)}`);
  }
});

test('each container process has the uid_map of its manager record', async () => {
  const listed = new Map((await managerList(rig.mgr)).map((c) => [c.id, c.uidMappings]));
  for (const [name, id] of ids) {
    const pid = (await rig.docker(['inspect', '--format', '{{.State.Pid}}', id])).stdout.trim();
    assert.deepEqual(parseIdMap(readFileSync(`/proc/${pid}/uid_map`, 'utf8')), listed.get(id), name);
  }
});

test(`${COUNT} concurrent docker rm -f all succeed`, async () => {
  const results = await inPool([...ids.values()], CONCURRENCY, (id) => rig.docker(['rm', '-f', id], { reject: false, timeoutMs: 180_000 }));
  assert.deepEqual(results.filter((r) => r.exitCode !== 0), []);
  assert.equal((await rig.docker(['ps', '-aq'])).stdout, '');
});

test('afterwards, every allocation is freed: the manager lists nothing and the subid state file holds no allocation', async () => {
  assert.deepEqual(await managerList(rig.mgr), []);
  assert.ok(existsSync(path.join(rig.mgr.stateDir, 'subid.json')), 'the subid state file is missing');
  assert.deepEqual(subidAllocations(rig.mgr), []);
});

test('afterwards, no mount is left under the manager run dir', () => {
  assert.deepEqual(mountsUnder([rig.mgr.runDir]), []);
});

test('afterwards, nothing but mgr.sock, the mount-namespace lock and the empty layout dirs is left in the manager run dir', () => {
  assert.deepEqual(walk(rig.mgr.runDir).sort(), ['bundles', 'containers', 'hints', MOUNT_NS_LOCK_FILE, path.basename(rig.mgr.socket)].sort());
});
