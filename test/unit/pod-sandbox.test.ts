// A pod's sandbox keeps the engine's rootfs (no overlay swap), bound into the run dir, and gets the
// mount points its root cannot make there (spec-transform/pod-sandbox.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import { rootfsMountPoints } from '../../src/spec-transform/pod-sandbox.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { assertValidConfig } from '../helpers/schema.ts';
import { DOCKER_OVERLAY_ROOTFS, planWith } from '../helpers/plan.ts';

const ENGINE_ROOTFS = DOCKER_OVERLAY_ROOTFS.resolved;

function podSpec(containerType: 'sandbox' | 'container'): Spec {
  return {
    ociVersion: '1.1.0',
    process: { user: { uid: 65535, gid: 65535 }, args: ['/pause'], cwd: '/' },
    root: { path: ENGINE_ROOTFS, readonly: true },
    annotations: { 'io.kubernetes.cri.container-type': containerType },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance'] },
      { destination: '/dev/shm', type: 'bind', source: '/run/containerd/sandboxes/abc/shm', options: ['rbind', 'ro'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: '/var/lib/containerd/sandboxes/abc/resolv.conf', options: ['rbind', 'ro'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }] },
  };
}

const plan = planWith({ rootfs: DOCKER_OVERLAY_ROOTFS });

test('a pod sandbox\'s rootfs is the engine\'s, bound into the run dir, with no overlay of sysrunc\'s', () => {
  const { spec, actions } = runPipeline(podSpec('sandbox'), plan);
  assert.equal(spec.root?.path, `${plan.runDir}/rootfs`);
  assert.ok(actions.some((a) => a.kind === 'bind-mount' && a.source === ENGINE_ROOTFS && a.target === `${plan.runDir}/rootfs`));
  assert.deepEqual(actions.filter((a) => a.kind === 'overlay-mount' || a.kind === 'idmapped-mount' || a.kind === 'rootfs-clone' || a.kind === 'chown-tree'), []);
  assertValidConfig(spec);
});

test('a pod\'s app container still gets its overlay over idmapped layers in place of the engine\'s', () => {
  const { actions } = runPipeline(podSpec('container'), plan);
  assert.ok(actions.some((a) => a.kind === 'overlay-mount' && a.replaces?.mountpoint === ENGINE_ROOTFS));
  assert.equal(actions.some((a) => a.kind === 'mount-points'), false);
});

test('a pod sandbox keeps the engine\'s rootfs in clone and chown modes too', () => {
  for (const mode of ['clone', 'chown'] as const) {
    const { actions } = runPipeline(podSpec('sandbox'), planWith({ rootfs: DOCKER_OVERLAY_ROOTFS, ownership: { mode, bindSources: new Map() } }));
    assert.deepEqual(actions.filter((a) => a.kind === 'rootfs-clone' || (a.kind === 'chown-tree' && a.path === ENGINE_ROOTFS)), [], mode);
  }
});

test('a CRI-O infra container counts as a pod sandbox', () => {
  const spec = { ...podSpec('sandbox'), annotations: { 'io.kubernetes.cri-o.ContainerType': 'sandbox' } };
  assert.equal(runPipeline(spec, plan).actions.some((a) => a.kind === 'overlay-mount'), false);
});

test('a rootfs the engine already shifted is left in place, sandbox or not', () => {
  const shifted = planWith({ rootfs: { ...DOCKER_OVERLAY_ROOTFS, overlay: undefined, shiftedByEngine: true } });
  const { spec, actions } = runPipeline(podSpec('sandbox'), shifted);
  assert.equal(spec.root?.path, ENGINE_ROOTFS);
  assert.equal(actions.some((a) => a.kind === 'mount-points' || a.kind === 'bind-mount'), false);
});

test('a pod sandbox\'s mount points, last among its actions, are in the engine\'s rootfs and include the mounts transforms added', () => {
  const { spec, actions } = runPipeline(podSpec('sandbox'), plan);
  const last = actions.at(-1);
  assert.equal(last?.kind, 'mount-points');
  if (last?.kind !== 'mount-points') return;
  assert.equal(last.root, ENGINE_ROOTFS);
  const points = last.points.map((p) => p.destination);
  for (const d of ['/proc', '/dev', '/etc/resolv.conf']) assert.ok(points.includes(d), d);
  // Every mount of the final config is either a point or below an earlier mount.
  for (const m of spec.mounts ?? []) assert.ok(points.some((p) => m.destination === p || m.destination.startsWith(`${p}/`)), m.destination);
});

test('a mount below an earlier mount gets no point in the rootfs: runc makes it in that mount', () => {
  const points = rootfsMountPoints(podSpec('sandbox').mounts ?? [], '/').map((p) => p.destination);
  assert.deepEqual(points, ['/proc', '/dev', '/etc/resolv.conf']);
});

test('a mount listed before the mount it is below still gets its point in the rootfs', () => {
  const points = rootfsMountPoints([{ destination: '/run/lock', type: 'tmpfs', source: 'tmpfs' }, { destination: '/run', type: 'tmpfs', source: 'tmpfs' }], '/');
  assert.deepEqual(points.map((p) => p.destination), ['/run/lock', '/run']);
});

test('a bind mount\'s point carries its source, so the manager can make a file for a file', () => {
  const points = rootfsMountPoints([{ destination: 'etc//hosts', type: 'bind', source: '/var/lib/x/hosts', options: ['rbind'] }], '/');
  assert.deepEqual(points, [{ destination: '/etc/hosts', bindSource: '/var/lib/x/hosts' }]);
});

test('the working directory gets a point unless it is / or below a mount', () => {
  assert.deepEqual(rootfsMountPoints([], '/work/dir'), [{ destination: '/work/dir' }]);
  assert.deepEqual(rootfsMountPoints([{ destination: '/work', type: 'tmpfs', source: 'tmpfs' }], '/work/dir').map((p) => p.destination), ['/work']);
  assert.deepEqual(rootfsMountPoints([], '/'), []);
});
