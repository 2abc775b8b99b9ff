// ioctl(NS_GET_USERNS) through src/host/namespace-owner.ts, on real namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { owningUserNamespace } from '../../src/host/namespace-owner.ts';

const inodeOf = (p: string) => {
  const st = statSync(p);
  return { dev: st.dev, ino: st.ino };
};

test("the host's network namespace belongs to the host's user namespace", () => {
  assert.deepEqual(owningUserNamespace('/proc/self/ns/net'), inodeOf('/proc/self/ns/user'));
});

test('a network namespace made together with a new user namespace belongs to that user namespace, not to the host', async () => {
  const child = spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '30'], { stdio: 'ignore' });
  try {
    const pid = child.pid ?? -1;
    // unshare execs sleep once both namespaces exist.
    for (let i = 0; i < 100 && statSync(`/proc/${pid}/ns/net`).ino === statSync('/proc/self/ns/net').ino; i++) await new Promise((r) => setTimeout(r, 20));
    const owner = owningUserNamespace(`/proc/${pid}/ns/net`);
    assert.deepEqual(owner, inodeOf(`/proc/${pid}/ns/user`));
    assert.notDeepEqual(owner, inodeOf('/proc/self/ns/user'));
  } finally {
    child.kill('SIGKILL');
  }
});

test('a path that is no namespace file gives an error naming the call and the path', () => {
  assert.throws(() => owningUserNamespace('/proc/self/status'), /ioctl NS_GET_USERNS.*\/proc\/self\/status|\/proc\/self\/status.*ioctl NS_GET_USERNS/);
});
