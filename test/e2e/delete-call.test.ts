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
import { allocations, assertNothingLeft, waitForLog } from './faults-helpers.ts';
import { mountEngineOverlay, removeEngineLayer, topOverlayUpperdir } from './engine-overlay-bundle.ts';

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

/**
 * A running container whose rootfs is an engine's overlay (the manager puts its own in that
 * overlay's place, so the delete is the synchronous one), killed; no store volume.
 */
async function onEngineOverlay(id: string): Promise<{ bundle: string; rootfs: string }> {
  const b = await makeBundle(path.join(rig.work, id), rig.rootfs, ['sleep', '100000']);
  const { rootfs } = mountEngineOverlay(b.bundle);
  const created = await sysrunc(['create', '--bundle', b.bundle, id]);
  assert.equal(created.exitCode, 0, created.stderr);
  assert.equal((await sysrunc(['start', id])).exitCode, 0);
  assert.match(readFileSync(path.join(path.dirname(rig.mgr.socket), 'hints', id), 'utf8'), /"delete":"sync"/);
  assert.ok(topOverlayUpperdir(rootfs)?.startsWith(`${rig.mgr.runDir}/`), "sysrunc's overlay is at the engine's path while it runs");
  await sysrunc(['kill', id, 'KILL']);
  return { bundle: b.bundle, rootfs };
}

/** The engine's own overlay is on top at its path again (the one over the bundle's layer/upper). */
function assertEngineOverlayBack(rootfs: string): void {
  const upper = topOverlayUpperdir(rootfs);
  assert.ok(upper !== undefined && !upper.startsWith(`${rig.mgr.runDir}/`) && upper.endsWith('layer/upper'), `the overlay on top at ${rootfs} has upper dir ${upper ?? '(none)'}`);
}

test('a synchronous delete returns with the engine\'s overlay back at its path and sysrunc\'s unmounted; the run dir, the range and the record go after it, logged when done', async () => {
  const id = 'sync-engine';
  const box = await onEngineOverlay(id);
  try {
    const mark = rig.mgr.log().length;
    const out = await sysrunc(['delete', '--force', id]);
    assert.deepEqual({ exitCode: out.exitCode, stderr: out.stderr }, { exitCode: 0, stderr: '' });
    assertEngineOverlayBack(box.rootfs);
    const ownOverlays = mountsUnder([rig.mgr.runDir]).filter((m) => m.includes(`/${id}/`) && topOverlayUpperdir(m) !== undefined);
    assert.deepEqual(ownOverlays, [], "sysrunc's own overlay is gone");
    // The engine removes the layer at once, while the manager may still be releasing the run dir.
    removeEngineLayer(box.bundle);
    await waitForLog(rig.mgr, new RegExp(`"id":"${id}"[^\\n]*"msg":"released container"`), mark);
    await assertNothingLeft(rig.mgr, id);
  } finally {
    removeEngineLayer(box.bundle);
  }
});

/** The manager's log line for id's engine overlay returned at its exit (exit-hand-back.ts). */
const handedBackAtExit = (id: string) => new RegExp(`"id":"${id}"[^\\n]*"msg":"returned the engine's overlay at the container's exit"`);

/** The overlays sysrunc still has mounted for id in its run dir. */
const ownOverlaysOf = (id: string) => mountsUnder([rig.mgr.runDir]).filter((m) => m.includes(`/${id}/`) && topOverlayUpperdir(m) !== undefined);

test('once a container\'s processes are gone, the engine\'s overlay is back at its path before runc\'s delete is called, which is then runc\'s own; the manager releases the rest when it sees the container gone', async () => {
  const id = 'exit-engine';
  const mark = rig.mgr.log().length;
  const box = await onEngineOverlay(id);
  try {
    await waitForLog(rig.mgr, handedBackAtExit(id), mark);
    assert.ok(rig.runcIds().includes(id), 'runc still has the container');
    assertEngineOverlayBack(box.rootfs);
    assert.deepEqual(ownOverlaysOf(id), [], "sysrunc's own overlay is gone");
    // Nothing of the engine's is left to wait for: the delete is runc's own.
    const hint = path.join(path.dirname(rig.mgr.socket), 'hints', id);
    assert.doesNotMatch(existsSync(hint) ? readFileSync(hint, 'utf8') : '', /"delete":"sync"/);
    const out = await sysrunc(['delete', id]);
    assert.deepEqual({ exitCode: out.exitCode, stderr: out.stderr }, { exitCode: 0, stderr: '' });
    assertEngineOverlayBack(box.rootfs);
    removeEngineLayer(box.bundle);
    await waitForLog(rig.mgr, new RegExp(`"id":"${id}"[^\\n]*"msg":"released container"`), mark);
    await assertNothingLeft(rig.mgr, id);
  } finally {
    removeEngineLayer(box.bundle);
  }
});

test('a container in another container\'s pid namespace keeps sysrunc\'s overlay after its init exits, until its delete', async () => {
  const [owner, joiner, control] = ['pidns-owner', 'pidns-joiner', 'pidns-control'];
  const a = await makeBundle(path.join(rig.work, owner), rig.rootfs, ['sleep', '100000']);
  assert.equal((await sysrunc(['run', '-d', '--bundle', a.bundle, owner])).exitCode, 0);
  const ownerPid = Number(JSON.parse((await sysrunc(['state', owner])).stdout).pid);
  const b = await makeBundle(path.join(rig.work, joiner), rig.rootfs, ['sleep', '100000']);
  const config = JSON.parse(readFileSync(path.join(b.bundle, 'config.json'), 'utf8')) as { linux: { namespaces: Array<{ type: string; path?: string }> } };
  config.linux.namespaces = config.linux.namespaces.map((ns) => (ns.type === 'pid' ? { type: 'pid', path: `/proc/${ownerPid}/ns/pid` } : ns));
  writeFileSync(path.join(b.bundle, 'config.json'), JSON.stringify(config));
  const { rootfs } = mountEngineOverlay(b.bundle);
  let controlBundle: string | undefined;
  try {
    const mark = rig.mgr.log().length;
    const created = await sysrunc(['run', '-d', '--bundle', b.bundle, joiner]);
    assert.equal(created.exitCode, 0, created.stderr);
    await sysrunc(['kill', joiner, 'KILL']);
    // A container in a pid namespace of its own, killed after it: once its overlay is back, the
    // joiner's init exit has long been seen (it was never watched, decided at its create).
    controlBundle = (await onEngineOverlay(control)).bundle;
    await waitForLog(rig.mgr, handedBackAtExit(control), mark);
    assert.doesNotMatch(rig.mgr.log().slice(mark), handedBackAtExit(joiner));
    assert.ok(topOverlayUpperdir(rootfs)?.startsWith(`${rig.mgr.runDir}/`), "sysrunc's overlay is still at the engine's path");
    assert.equal((await sysrunc(['delete', '--force', joiner])).exitCode, 0);
    assertEngineOverlayBack(rootfs);
  } finally {
    await sysrunc(['delete', '--force', joiner]);
    await sysrunc(['delete', '--force', control]);
    await sysrunc(['delete', '--force', owner]);
    removeEngineLayer(b.bundle);
    if (controlBundle !== undefined) removeEngineLayer(controlBundle);
  }
});

test('a manager killed -9 after a synchronous delete\'s engine part, before its run dir part, leaves nothing once restarted', async () => {
  const id = 'sync-engine-killed';
  const box = await onEngineOverlay(id);
  try {
    rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'delete:engine-released' });
    await rig.mgr.restart();
    const mark = rig.mgr.log().length;
    const deleting = sysrunc(['delete', '--force', id]);
    try {
      await waitForLog(rig.mgr, /killing pid \d+ at delete:engine-released/, mark);
      // Killed there: what the engine depends on was done before, whatever the rest.
      assertEngineOverlayBack(box.rootfs);
    } finally {
      rig.mgr.setEnv({});
      await rig.mgr.restart();
    }
    const out = await deleting;
    // Answered before the kill, or by the restarted manager: either way runc's delete stands, no warning.
    assert.deepEqual({ exitCode: out.exitCode, stderr: out.stderr }, { exitCode: 0, stderr: '' });
    assertEngineOverlayBack(box.rootfs);
    removeEngineLayer(box.bundle);
    await assertNothingLeft(rig.mgr, id);
  } finally {
    removeEngineLayer(box.bundle);
  }
});
