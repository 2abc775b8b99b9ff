// A caller the manager will never serve gets one line saying why, not "start the manager".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callerFacts, callerRefusal } from '../../src/manager-client/rootless-caller.ts';
import { unreachable } from '../../src/manager-client/reply.ts';

const SOCKET = '/run/sysrunc/mgr.sock';

test('root of a user namespace that shows the manager directory as unmapped is told rootless engines are not supported', () => {
  const refusal = callerRefusal(SOCKET, { euid: 0, socketDirOwner: 65534, overflowUid: 65534 });
  assert.match(refusal ?? '', /^sysrunc-mgr at \/run\/sysrunc\/mgr\.sock serves host root only .*rootless podman and rootless Docker are not supported; run the engine as root$/);
});

test('root that owns the manager directory (host root, or root of a system container with its own manager) is not refused', () => {
  assert.equal(callerRefusal(SOCKET, { euid: 0, socketDirOwner: 0, overflowUid: 65534 }), undefined);
});

test('a non-root caller is told the manager serves root only', () => {
  assert.equal(
    callerRefusal(SOCKET, { euid: 1000, socketDirOwner: 0, overflowUid: 65534 }),
    'sysrunc-mgr at /run/sysrunc/mgr.sock serves root only and this caller is uid 1000: run the engine as root',
  );
});

test('the facts of this process name the owner of the nearest existing directory above the socket', () => {
  const facts = callerFacts('/proc/no-such-dir/deeper/mgr.sock');
  assert.deepEqual(facts, { euid: process.geteuid?.(), socketDirOwner: 0, overflowUid: facts?.overflowUid });
  assert.ok(Number.isInteger(facts?.overflowUid));
});

test('the unreachable error of host root still says to start the manager', () => {
  assert.match(unreachable(SOCKET, 'connect: ENOENT').message, /^sysrunc-mgr is not reachable at \/run\/sysrunc\/mgr\.sock \(connect: ENOENT\); start it/);
});
