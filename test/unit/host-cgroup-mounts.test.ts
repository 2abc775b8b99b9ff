// The cgroup mounts taken from an already parsed mountinfo (src/host/cgroups.ts cgroupMountsOf, what
// a create's facts use so the mount table is read once) are the ones a fresh read of it gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupHierarchies, cgroupMounts, cgroupMountsOf } from '../../src/host/cgroups.ts';
import { readMountInfo } from '../../src/host/mount.ts';

test('cgroup mounts from a parsed mountinfo equal those from reading it', () => {
  assert.deepEqual(cgroupMountsOf(readMountInfo()), cgroupMounts());
});

test('this process\'s cgroup hierarchies are found the same way from either', () => {
  assert.deepEqual(cgroupHierarchies(process.pid, cgroupMountsOf(readMountInfo())), cgroupHierarchies(process.pid));
});
