// The cgroup mounts kept between creates (src/host/cgroup-mount-cache.ts): the same hierarchies as
// a fresh read of mountinfo, without reading it again while the mounts are the same mounts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupHierarchies, cgroupMountsOf } from '../../src/host/cgroups.ts';
import { cgroupHierarchiesKept, forgetCgroupMounts } from '../../src/host/cgroup-mount-cache.ts';
import { readMountInfo, type MountInfo } from '../../src/host/mount.ts';
import { uniqueMountAt } from '../../src/host/statmount.ts';

const noUniqueIds = uniqueMountAt('/') === undefined && 'the kernel has no unique mount ids (before 6.8)';

test('the kept cgroup mounts give the hierarchies a fresh read of mountinfo gives', () => {
  forgetCgroupMounts();
  const fresh = cgroupHierarchies(process.pid, cgroupMountsOf(readMountInfo()));
  assert.deepEqual(cgroupHierarchiesKept(process.pid, readMountInfo), fresh);
  assert.deepEqual(cgroupHierarchiesKept(process.pid, readMountInfo), fresh);
});

test('while the cgroup mounts are the same mounts, mountinfo is read once', { skip: noUniqueIds }, () => {
  forgetCgroupMounts();
  let reads = 0;
  const counted = (): readonly MountInfo[] => {
    reads++;
    return readMountInfo();
  };
  for (let i = 0; i < 3; i++) cgroupHierarchiesKept(process.pid, counted);
  assert.equal(reads, 1);
  forgetCgroupMounts();
  cgroupHierarchiesKept(process.pid, counted);
  assert.equal(reads, 2);
});

test('hierarchies that had no mount when the list was read are left out again, without another read', { skip: noUniqueIds }, () => {
  forgetCgroupMounts();
  let reads = 0;
  // The first reading has no cgroup mounts at all: every hierarchy is unmatched then, so that is what is kept.
  const empty = (): readonly MountInfo[] => {
    reads++;
    return reads === 1 ? [] : readMountInfo();
  };
  assert.deepEqual(cgroupHierarchiesKept(process.pid, empty), []);
  assert.deepEqual(cgroupHierarchiesKept(process.pid, empty), []);
  assert.equal(reads, 1);
});
