// Issue 25: an in-layer store volume lives beside the container's upper dir while sysrunc's rootfs
// overlay is over it (no overlay of an inner engine below another overlay's upper dir), and is
// renamed back into the layer at every stop, where `docker commit`/`cp`/`diff` read it. Crash
// cases run the volume manager in a child process that a SYSRUNC_TEST_FAULT point kills with SIGKILL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isMountPoint } from '../../src/host/mount.ts';
import { VolumeManager, type CreateVolumesRequest } from '../../src/manager/volumes/volume-manager.ts';
import { scratch } from '../fixtures/volumes/env.ts';
import { volumeManagerAt, type TestVolumeManager, TEST_ID_BASE as BASE, TEST_IDS as IDS, DOCKER_STORE as DOCKER, CRASH_CHILD as CHILD } from '../fixtures/volumes/manager.ts';
import { manifest } from '../fixtures/volumes/manifest.ts';
import { makeSpecialTree } from '../fixtures/volumes/tree.ts';


const s = scratch('volumes-beside-layer');
const mgrs: VolumeManager[] = [];
after(async () => {
  for (const vm of mgrs) for (const c of vm.list()) await vm.destroyVolumes(c.id).catch(() => undefined);
  s.cleanup();
});

function manager(dir = s.sub('mgr')): TestVolumeManager {
  const m = volumeManagerAt(dir);
  mgrs.push(m.vm);
  return m;
}

/** A container as dockerd's overlay2 lays it out: <layer>/diff is the upper dir. */
function container(): { req: CreateVolumesRequest; upperdir: string; inLayer: string; layerDir: string } {
  const rootfs = s.sub('image');
  makeSpecialTree(path.join(rootfs, DOCKER), { overlayMarkers: true });
  const layerDir = s.sub('layer');
  const upperdir = path.join(layerDir, 'diff');
  mkdirSync(upperdir);
  return { req: { rootfs, upperdir, mountpoints: [DOCKER], ...IDS }, upperdir, inLayer: path.join(upperdir, DOCKER), layerDir };
}

function besideDirs(layerDir: string): string[] {
  return readdirSync(layerDir).filter((n) => n.startsWith('sysrunc-store.')).map((n) => path.join(layerDir, n));
}

test('a volume of an engine layer is recorded with its directory beside the upper dir, in the layer dir', async () => {
  const { req, layerDir } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', req);
  const beside = vm.list()[0]?.volumes[0]?.layer?.beside ?? '';
  assert.equal(path.dirname(beside), layerDir);
  assert.match(path.basename(beside), /^sysrunc-store\.var-lib-docker-[0-9a-f]{8}$/);
});

test('leaving the layer renames the store beside it; the view still shows the same data', async () => {
  const { req, inLayer, layerDir } = container();
  const { vm } = manager();
  const view = (await vm.createVolumes('c1', req)).mounts[0]!.source;
  const before = manifest(inLayer);
  assert.deepEqual(vm.leaveLayers('c1'), []);
  assert.equal(existsSync(inLayer), false, 'nothing at the store path in the layer');
  const [beside] = besideDirs(layerDir);
  assert.deepEqual(manifest(beside!), before, 'moved whole');
  writeFileSync(path.join(beside!, 'written-while-running'), 'x');
  assert.ok(existsSync(path.join(view, 'written-while-running')), 'the view follows the directory');
  assert.equal(statSync(view).uid, BASE, 'still idmapped for the container');
});

test('returning to the layer detaches the view and renames the store back byte for byte', async () => {
  const { req, inLayer, layerDir } = container();
  const { vm } = manager();
  const view = (await vm.createVolumes('c1', req)).mounts[0]!.source;
  vm.leaveLayers('c1');
  writeFileSync(path.join(besideDirs(layerDir)[0]!, 'written-while-running'), 'kept');
  const running = manifest(besideDirs(layerDir)[0]!);
  assert.deepEqual(vm.returnToLayers('c1'), []);
  assert.equal(isMountPoint(view), false);
  assert.deepEqual(besideDirs(layerDir), []);
  assert.deepEqual(manifest(inLayer), running);
  assert.equal(statSync(path.join(inLayer, 'written-while-running')).uid, 0, 'at rest with the image\'s ids, nothing chowned');
});

test('what the container left at the store path in its layer while the store was beside is replaced by the store', async () => {
  const { req, inLayer, layerDir, upperdir } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', req);
  vm.leaveLayers('c1');
  mkdirSync(inLayer);
  writeFileSync(path.join(inLayer, 'stray'), 'not the store');
  const store = manifest(besideDirs(layerDir)[0]!);
  assert.deepEqual(vm.returnToLayers('c1'), []);
  assert.deepEqual(manifest(inLayer), store);
  assert.deepEqual(readdirSync(path.join(upperdir, 'var/lib')).filter((n) => n.includes('sysrunc-displaced')), []);
});

test('a start after a stop attaches a view of the same data and moves it out again', async () => {
  const { req, inLayer, layerDir } = container();
  const { vm } = manager();
  await vm.createVolumes('c1', req);
  vm.leaveLayers('c1');
  writeFileSync(path.join(besideDirs(layerDir)[0]!, 'f'), 'first life');
  vm.returnToLayers('c1');
  await vm.syncOut('c1', { rootfs: req.upperdir ?? '', intoUpperdir: true });
  const again = (await vm.createVolumes('c1', req)).mounts[0]!.source;
  vm.leaveLayers('c1');
  assert.equal(readFileSync(path.join(again, 'f'), 'utf8'), 'first life');
  assert.equal(existsSync(inLayer), false);
  assert.equal(besideDirs(layerDir).length, 1);
});

test('an upper dir that is not an engine\'s <layer>/diff or <snapshot>/fs keeps its store in the layer, with the reason recorded', async () => {
  const rootfs = s.sub('image');
  makeSpecialTree(path.join(rootfs, DOCKER), { overlayMarkers: true });
  const upperdir = s.sub('upper');
  const { vm } = manager();
  await vm.createVolumes('c1', { rootfs, upperdir, mountpoints: [DOCKER], ...IDS });
  assert.match(vm.list()[0]?.volumes[0]?.layer?.notBeside ?? '', /is not an engine's <layer>\/diff or <snapshot>\/fs/);
  assert.deepEqual(vm.leaveLayers('c1'), []);
  assert.ok(existsSync(path.join(upperdir, DOCKER)), 'still in the layer');
});

test('a volume recorded before stores could live beside the layer learns its place at its next start', async () => {
  const { req, layerDir } = container();
  const m = manager();
  await m.vm.createVolumes('c1', req);
  await m.vm.syncOut('c1', { rootfs: req.upperdir ?? '', intoUpperdir: true });
  const state = JSON.parse(readFileSync(m.stateFile, 'utf8')) as { containers: Record<string, { volumes: Array<{ layer: Record<string, unknown> }> }> };
  for (const v of state.containers['c1']?.volumes ?? []) delete v.layer['beside'];
  writeFileSync(m.stateFile, JSON.stringify(state));
  const { vm } = manager(m.dir);
  await vm.createVolumes('c1', req);
  assert.equal(path.dirname(vm.list()[0]?.volumes[0]?.layer?.beside ?? ''), layerDir);
  assert.deepEqual(vm.leaveLayers('c1'), []);
  assert.equal(besideDirs(layerDir).length, 1);
});

function runChild(m: { root: string; stateFile: string }, req: object, steps: string[]): { signal: NodeJS.Signals | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ ...m, id: 'c1', req, steps, owner: IDS })], { encoding: 'utf8' });
  if (r.signal === null && r.status !== 0) throw new Error(`crash child failed: ${r.stderr}`);
  return { signal: r.signal, out: r.stdout + r.stderr };
}

// Killed at each step of a start's move out and a stop's move back: the data is whole at one place,
// never both; the next start attaches it where it is, and the next stop puts it in the layer.
for (const [fault, step] of [
  ['layer-move-out:before-rename', 'leave'],
  ['layer-move-out:renamed', 'leave'],
  ['layer-move-in:before-rename', 'return'],
  ['layer-move-in:renamed', 'return'],
] as const) {
  test(`a manager killed -9 at ${fault} loses nothing and duplicates nothing: the next start and stop find the data`, async () => {
    const { req, inLayer, layerDir } = container();
    const m = manager();
    await m.vm.createVolumes('c1', req);
    writeFileSync(path.join(inLayer, 'f'), 'data');
    if (step === 'return') m.vm.leaveLayers('c1');
    const r = runChild(m, req, [`fault:${fault}`, step]);
    assert.equal(r.signal, 'SIGKILL', r.out);
    const places = [existsSync(inLayer), besideDirs(layerDir).length === 1];
    assert.equal(places.filter((p) => p).length, 1, `the data at exactly one place (layer, beside): ${places.join(', ')}`);
    const whole = manifest(places[0] === true ? inLayer : besideDirs(layerDir)[0]!);
    const { vm } = manager(m.dir);
    await vm.recover();
    const view = (await vm.createVolumes('c1', req)).mounts[0]!.source;
    assert.equal(readFileSync(path.join(view, 'f'), 'utf8'), 'data');
    assert.deepEqual(vm.leaveLayers('c1'), []);
    assert.deepEqual(vm.returnToLayers('c1'), []);
    assert.deepEqual(besideDirs(layerDir), []);
    assert.deepEqual(manifest(inLayer), whole, 'back in the layer, byte for byte');
  });
}
