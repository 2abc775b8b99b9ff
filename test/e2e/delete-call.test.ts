// The synchronous delete's release (the C launcher dist/sysrunc, in its own process; bin/sysrunc
// through dist/sysrunc-delete-call): runc's delete, then one deleteCall request; by the time the
// delete returns, the manager has released everything the container held. Where the client gets no
// answer (no manager), the per-call binary takes over and says what it always said. Real manager
// and runc, driven through dist/sysrunc as containerd's shim drives runc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ManagerClient } from '../../src/manager-client/client.ts';
import { makeBundle } from '../rig/images.ts';
import type { Outcome } from '../oci-conformance/fixture.ts';
import { mountsUnder } from '../rig/proc.ts';
import { useRuncRootRig } from './runc-root-rig.ts';
import { allocations, assertNothingLeft } from './faults-helpers.ts';

const rig = useRuncRootRig('delete-call');
const sysrunc = rig.sysrunc;

/**
 * A running busybox container with /var/lib/docker in its rootfs: the manager gives it a store
 * volume besides the idmapped rootfs, and asks for the synchronous delete (its hint).
 */
async function runningBox(id: string): Promise<string> {
  const b = await makeBundle(path.join(rig.work, id), rig.rootfs, ['sleep', '100000']);
  mkdirSync(path.join(b.rootfs, 'var/lib/docker'), { recursive: true });
  const created = await sysrunc(['create', '--bundle', b.bundle, id]);
  assert.equal(created.exitCode, 0, created.stderr);
  assert.equal((await sysrunc(['start', id])).exitCode, 0);
  assert.match(readFileSync(path.join(path.dirname(rig.mgr.socket), 'hints', id), 'utf8'), /"delete":"sync"/);
  await sysrunc(['kill', id, 'KILL']);
  return b.bundle;
}

/**
 * What the container holds right now, no waiting for a release to come: its mounts under the
 * manager's dirs, and its record (a released one stays, stopped, with nothing left to undo, and
 * keeps its range for a restart until its rootfs goes).
 */
async function heldNow(id: string): Promise<{ mounts: string[]; record: { stopped: boolean; actions: number } | undefined }> {
  const client = await ManagerClient.connect(rig.mgr.socket);
  try {
    const record = (await client.call('status', {})).containers.find((c) => c.id === id);
    return { mounts: mountsUnder([rig.mgr.runDir, rig.mgr.stateDir]).filter((m) => m.includes(id)), record: record && { stopped: record.stopped, actions: record.actions.length } };
  } finally {
    client.close();
  }
}

test('a synchronous delete through the C client has undone the mounts and stopped the record when it returns, with no per-call binary started; nothing is left once the rootfs goes', async () => {
  const id = 'sync-c';
  const bundle = await runningBox(id);
  assert.notDeepEqual((await heldNow(id)).mounts, [], 'the container holds mounts before its delete');
  assert.ok(allocations(rig.mgr).some((a) => a.id === id), 'and a range');
  // The per-call binary, where the launcher would start it, is a stand-in that only leaves a mark.
  const marker = path.join(rig.work, 'per-call-marker');
  writeFileSync(marker, `#!/bin/sh\necho "$@" >> ${path.join(rig.work, 'per-call-ran')}\nexit 99\n`, { mode: 0o755 });
  const out = await sysrunc(['delete', '--force', id], { SYSRUNC_NODE: marker });
  assert.deepEqual({ exitCode: out.exitCode, stderr: out.stderr }, { exitCode: 0, stderr: '' });
  assert.equal(existsSync(path.join(rig.work, 'per-call-ran')), false, 'the launcher started the per-call binary');
  assert.deepEqual(await heldNow(id), { mounts: [], record: { stopped: true, actions: 0 } });
  rmSync(bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr, id);
});

test('a synchronous delete with the manager down: runc\'s delete stands, with the per-call binary\'s warning, and the manager releases the rest once back', async () => {
  const id = 'sync-down';
  const bundle = await runningBox(id);
  await rig.mgr.stop();
  let out: Outcome;
  try {
    out = await sysrunc(['delete', '--force', id], { SYSRUNC_MGR_WAIT_MS: '0' });
  } finally {
    await rig.mgr.restart();
  }
  assert.equal(out.exitCode, 0, out.stderr);
  const socket = rig.mgr.socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(out.stderr, new RegExp(`^sysrunc: warning: delete ${id}: sysrunc-mgr is not reachable at ${socket} \\(connect: [^\\n]*\\n$`));
  assert.equal(rig.runcIds().includes(id), false, 'runc still has the container');
  rmSync(bundle, { recursive: true, force: true });
  await assertNothingLeft(rig.mgr, id);
});
