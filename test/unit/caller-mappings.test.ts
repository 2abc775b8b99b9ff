// A config that brings its own id mappings (a Kubernetes pod with hostUsers: false: the kubelet's
// range) is used as it is, never allocated again from sysrunc's pool: a range that overlaps the
// pool is refused with one line naming both, one outside it is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCallerMappings } from '../../src/manager/caller-mappings.ts';

const POOL = [{ start: 0x10000000, size: 2 ** 26 }];
const KUBELET = 40_000 * 65536;

test('a caller range outside sysrunc\'s pool and every held range is accepted', () => {
  assert.doesNotThrow(() => checkCallerMappings('pod1', 'uid', [{ containerID: 0, hostID: KUBELET, size: 65536 }], [], POOL));
});

test('a caller range overlapping sysrunc\'s pool is refused with one line naming the ranges and the file', () => {
  const inside = POOL[0]!.start + POOL[0]!.size - 65536;
  assert.throws(
    () => checkCallerMappings('pod1', 'gid', [{ containerID: 0, hostID: inside, size: 65536 }], [], POOL),
    (err: Error) =>
      err.message === `container pod1: its gid mappings map host gids ${inside}-${inside + 65535}, which overlap sysrunc's own pool 268435456-335544319 (user sysrunc in /etc/subgid); give the caller (a kubelet: its own /etc/subgid range) ids outside it`,
  );
});

test('a range straddling the pool\'s start is refused too', () => {
  assert.throws(() => checkCallerMappings('pod1', 'uid', [{ containerID: 0, hostID: POOL[0]!.start - 100, size: 65536 }], [], POOL), /overlap sysrunc's own pool/);
});

test('an overlap with a range held for another container is named by that container first', () => {
  const held = [{ id: 'other', start: POOL[0]!.start, size: 65536 }];
  assert.throws(() => checkCallerMappings('pod1', 'uid', [{ containerID: 0, hostID: POOL[0]!.start, size: 65536 }], held, POOL), /that sysrunc gave to container other$/);
});
