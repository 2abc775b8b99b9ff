// The ranges the manager's records hold, as the allocator is given them at start-up (subid-store.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heldRanges, type ContainerRecord } from '../../src/manager/registry.ts';

function record(id: string, hostID: number, how: { allocated?: boolean; sharedRange?: string }): ContainerRecord {
  return {
    version: 1, id, runtimeRoot: '/run/runc', bundle: `/b/${id}`, shimPid: 1, shimStartTime: '1', createdAt: '2026-12-06T00:00:00Z',
    allocated: how.allocated === true, ...(how.sharedRange === undefined ? {} : { sharedRange: how.sharedRange }),
    uidMappings: [{ containerID: 0, hostID, size: 65536 }], gidMappings: [{ containerID: 0, hostID: hostID + 1, size: 65536 }],
    runDir: `/run/sysrunc/containers/${id}`, actions: [],
  };
}

test('an allocated record holds its range under its own id', () => {
  assert.deepEqual(heldRanges([record('a', 100000, { allocated: true })]), [{ id: 'a', uid: 100000, gid: 100001, size: 65536 }]);
});

test('records sharing a range hold it once, under the key of the container that allocated it', () => {
  const held = heldRanges([record('pod', 200000, { allocated: true }), record('app', 200000, { sharedRange: 'pod' }), record('app2', 200000, { sharedRange: 'pod' })]);
  assert.deepEqual(held, [{ id: 'pod', uid: 200000, gid: 200001, size: 65536 }]);
});

test('a range still shared after its allocating container went is held under that container id', () => {
  assert.deepEqual(heldRanges([record('app', 300000, { sharedRange: 'gone' })]), [{ id: 'gone', uid: 300000, gid: 300001, size: 65536 }]);
});

test("a record whose mappings came from its caller holds no range of sysrunc's", () => {
  assert.deepEqual(heldRanges([record('kubelet-pod', 400000, {})]), []);
});
