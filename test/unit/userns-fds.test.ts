// The manager's user-namespace fds for idmapped mounts (src/manager/userns-fds.ts): one namespace
// per mapping, shared by the containers that have it, and the last few kept after their containers
// went, so a container given a freed range needs no new namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, openSync, readlinkSync } from 'node:fs';
import { UsernsFds } from '../../src/manager/userns-fds.ts';

const map = (hostID: number) => [{ containerID: 0, hostID, size: 65536 }];

/** UsernsFds whose namespaces are /dev/null fds, counting how many it made. */
function counted(keepIdle?: number): { fds: UsernsFds; made: () => number } {
  let made = 0;
  const fds = new UsernsFds({
    create: () => {
      made++;
      return openSync('/dev/null', 'r');
    },
    ...(keepIdle === undefined ? {} : { keepIdle }),
  });
  return { fds, made: () => made };
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test('a namespace made for a mapping is a user namespace, and two containers with that mapping share it', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const fds = new UsernsFds();
  const a = fds.get('a', map(300000), map(300000));
  const b = fds.get('b', map(300000), map(300000));
  assert.equal(a, b);
  assert.match(readlinkSync(`/proc/self/fd/${a}`), /^user:\[\d+\]$/);
  fds.release('a');
  fds.release('b');
});

test('containers with different mappings get different namespaces', () => {
  const { fds, made } = counted();
  assert.notEqual(fds.get('a', map(100000), map(100000)), fds.get('b', map(200000), map(200000)));
  assert.notEqual(fds.get('c', map(100000), map(200000)), fds.get('a', map(100000), map(100000)));
  assert.equal(made(), 3);
});

test('a shared namespace stays in use until the last of its containers releases it', () => {
  const { fds } = counted();
  fds.get('a', map(100000), map(100000));
  fds.get('b', map(100000), map(100000));
  fds.release('a');
  assert.deepEqual(fds.counts(), { inUse: 1, idle: 0 });
  fds.release('b');
  assert.deepEqual(fds.counts(), { inUse: 0, idle: 1 });
});

test('a container given a freed range gets the namespace its last container used, without making one', () => {
  const { fds, made } = counted();
  const first = fds.get('a', map(100000), map(100000));
  fds.release('a');
  assert.equal(fds.get('b', map(100000), map(100000)), first);
  assert.equal(made(), 1);
  assert.equal(isOpen(first), true);
});

test('beyond the cap, the namespaces unused longest are closed', () => {
  const { fds } = counted(2);
  const all = [1, 2, 3].map((i) => fds.get(`c${i}`, map(i * 100000), map(i * 100000)));
  for (const i of [1, 2, 3]) fds.release(`c${i}`);
  assert.deepEqual(all.map(isOpen), [false, true, true]);
  assert.deepEqual(fds.counts(), { inUse: 0, idle: 2 });
});

test('releasing a container that holds nothing changes nothing', () => {
  const { fds } = counted();
  fds.get('a', map(100000), map(100000));
  fds.release('nobody');
  assert.deepEqual(fds.counts(), { inUse: 1, idle: 0 });
});
