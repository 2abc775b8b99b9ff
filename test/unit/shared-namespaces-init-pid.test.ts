// Which sysrunc container owns a namespace a config joins: found through each container's init pid,
// which runc's state.json names. A container's state is read once in its life, not at every
// namespace-joining create (every pod sandbox and pod container); a new create of the same id is
// a new life and is read afresh. A real process in a network namespace of its own plays the init.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sharedUserns } from '../../src/manager/shared-namespaces.ts';
import type { ContainerRecord } from '../../src/manager/registry.ts';
import type { Spec } from '../../src/oci/spec.ts';

const init = spawn('unshare', ['--net', 'sleep', '1000'], { stdio: 'ignore' });
after(() => init.kill('SIGKILL'));
const runtimeRoot = mkdtempSync('/tmp/sysrunc-shared-ns-');

function record(id: string, createdAt: string): ContainerRecord {
  return {
    version: 1, id, runtimeRoot, bundle: '/nonexistent', shimPid: process.pid, shimStartTime: '', createdAt, allocated: true,
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    runDir: '/nonexistent', actions: [],
  };
}

function writeState(id: string, pid: number): void {
  mkdirSync(path.join(runtimeRoot, id), { recursive: true });
  writeFileSync(path.join(runtimeRoot, id, 'state.json'), JSON.stringify({ id, init_process_pid: pid }));
}

/** `unshare` execs `sleep` in the same pid once the namespace is made: wait until the netns differs. */
async function initPid(): Promise<number> {
  const { readlinkSync } = await import('node:fs');
  const pid = init.pid as number;
  while (readlinkSync(`/proc/${pid}/ns/net`) === readlinkSync('/proc/self/ns/net')) await new Promise((r) => setTimeout(r, 10));
  return pid;
}

const joining = (pid: number): Spec => ({ ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network', path: `/proc/${pid}/ns/net` }] } });

test("a namespace-joining create finds the owner from its init pid, and again once runc's state is unreadable", async () => {
  const pid = await initPid();
  writeState('sandbox', pid);
  const sandbox = record('sandbox', '2026-12-05T00:00:00.000Z');
  assert.equal(sharedUserns('app-1', joining(pid), process.pid, [sandbox])?.owner.id, 'sandbox');
  rmSync(path.join(runtimeRoot, 'sandbox', 'state.json'));
  assert.equal(sharedUserns('app-2', joining(pid), process.pid, [sandbox])?.owner.id, 'sandbox');
});

test("a new create of the same id is read afresh: with no runc state it owns nothing", async () => {
  const pid = await initPid();
  writeState('again', pid);
  assert.equal(sharedUserns('app-1', joining(pid), process.pid, [record('again', '2026-12-05T00:00:00.000Z')])?.owner.id, 'again');
  rmSync(path.join(runtimeRoot, 'again', 'state.json'));
  assert.throws(() => sharedUserns('app-2', joining(pid), process.pid, [record('again', '2026-12-05T00:00:01.000Z')]), /is not a namespace of a container sysrunc started/);
});
