import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import { createUserNamespaceFd, type IdMap } from '../../src/host/userns.ts';
import { SyscallError } from '../../src/host/libc.ts';

const O_CLOEXEC = 0o2000000;

/** Runs a command inside the user namespace behind fd (passed to nsenter as its fd 3). */
function inUserns(fd: number, file: string): string {
  return execFileSync('nsenter', ['--user=/proc/self/fd/3', 'cat', file], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8' });
}

function parseMap(text: string): IdMap[] {
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .map(([containerID = -1, hostID = -1, size = -1]) => ({ containerID, hostID, size }));
}

function children(): string {
  return readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim();
}

test('the namespace carries exactly the given uid and gid mappings', (t) => {
  const uidMap = [
    { containerID: 0, hostID: 100000, size: 1000 },
    { containerID: 1000, hostID: 300000, size: 64536 },
  ];
  const gidMap = [{ containerID: 0, hostID: 200000, size: 65536 }];
  const fd = createUserNamespaceFd(uidMap, gidMap);
  t.after(() => closeSync(fd));
  assert.deepEqual(parseMap(inUserns(fd, '/proc/self/uid_map')), uidMap);
  assert.deepEqual(parseMap(inUserns(fd, '/proc/self/gid_map')), gidMap);
});

test('setgroups stays allowed in the namespace', (t) => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const fd = createUserNamespaceFd(map, map);
  t.after(() => closeSync(fd));
  assert.equal(inUserns(fd, '/proc/self/setgroups').trim(), 'allow');
});

test('the namespace is a new one, not ours', (t) => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const fd = createUserNamespaceFd(map, map);
  t.after(() => closeSync(fd));
  assert.notEqual(inUserns(fd, '/proc/self/uid_map'), readFileSync('/proc/self/uid_map', 'utf8'));
});

test('the fd is close-on-exec', (t) => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const fd = createUserNamespaceFd(map, map);
  t.after(() => closeSync(fd));
  const flags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0';
  assert.notEqual(parseInt(flags, 8) & O_CLOEXEC, 0);
});

test('leaves no child process behind', (t) => {
  const before = children();
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const fd = createUserNamespaceFd(map, map);
  t.after(() => closeSync(fd));
  assert.equal(children(), before);
});

test('an empty mapping is rejected with EINVAL', () => {
  assert.throws(
    () => createUserNamespaceFd([], [{ containerID: 0, hostID: 100000, size: 1 }]),
    (err: unknown) => err instanceof SyscallError && err.code === 'EINVAL',
  );
});

test('overlapping mappings fail with the kernel EINVAL on uid_map and leave no child behind', () => {
  const before = children();
  const overlapping = [
    { containerID: 0, hostID: 100000, size: 10 },
    { containerID: 5, hostID: 200000, size: 10 },
  ];
  assert.throws(
    () => createUserNamespaceFd(overlapping, [{ containerID: 0, hostID: 100000, size: 1 }]),
    (err: unknown) =>
      err instanceof SyscallError && err.code === 'EINVAL' && /^write \/proc\/\d+\/uid_map: EINVAL \(Invalid argument\)$/.test(err.message),
  );
  assert.equal(children(), before);
});
