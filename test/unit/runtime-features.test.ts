// What sysrunc leaves to runc, chosen by runc's own `features` (spec-transform/runtime-features.ts):
// the facts read from real answers of runc 1.1.5 (this host) and runc 1.3.6 (Debian sid), and the
// transforms that differ by them, on both fact sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { Spec } from '../../src/oci/spec.ts';
import type { Plan } from '../../src/spec-transform/types.ts';
import { RUNC_1_1_FEATURES, runtimeFeaturesOf, type RuntimeFeatures } from '../../src/spec-transform/runtime-features.ts';
import { bindMountOwnership } from '../../src/spec-transform/bind-mount-ownership.ts';
import { rootfsOwnership } from '../../src/spec-transform/rootfs-ownership.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { sharedUserns } from '../../src/manager/shared-namespaces.ts';
import { assertValidConfig } from '../helpers/schema.ts';
import { dockerConfig, PROC_MOUNT } from '../helpers/docker-config.ts';
import { bindFacts, DOCKER_ROOTFS, planWith, ROOT_MAPPING } from '../helpers/plan.ts';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../fixtures/runc-features/${name}.json`, import.meta.url), 'utf8'));
const RUNC_1_1 = runtimeFeaturesOf(fixture('runc-1.1.5'));
const RUNC_1_3 = runtimeFeaturesOf(fixture('runc-1.3.6'));
const MAPPING = ROOT_MAPPING;

/** Docker's config with its /etc/hosts, a read-write and a read-only bind. */
const spec = (): Spec =>
  dockerConfig([
    PROC_MOUNT,
    { destination: '/etc/hosts', type: 'bind', source: '/var/lib/docker/containers/c0ffee0000c1/hosts', options: ['rbind', 'rprivate'] },
    { destination: '/data', type: 'bind', source: '/srv/data', options: ['bind'] },
    { destination: '/config', type: 'bind', source: '/srv/config', options: ['rbind', 'ro'] },
  ]);

/** spec()'s binds, idmapped; its /etc/hosts is Docker's file for this container (engine files are known by the id). */
const BINDS = bindFacts({
  1: { source: '/var/lib/docker/containers/c0ffee0000c1/hosts', kind: 'file' },
  2: { source: '/srv/data', kind: 'dir' },
  3: { source: '/srv/config', kind: 'dir' },
});
const plan = (runtime: RuntimeFeatures, overrides: Partial<Plan> = {}): Plan => planWith({ containerId: 'c0ffee0000c1', ...BINDS, runtime, ...overrides });

test('runc 1.1\'s features say it makes no idmapped mounts and cannot join host-owned namespaces', () => {
  assert.deepEqual(RUNC_1_1, RUNC_1_1_FEATURES);
});

test('runc 1.3\'s features say it makes idmapped mounts and joins host-owned namespaces itself', () => {
  assert.deepEqual(RUNC_1_3, { idmapMounts: true, joinsHostOwnedNamespaces: true });
});

test('a features answer that is not an object, or lacks the sections, means runc 1.1\'s facts', () => {
  for (const doc of [null, [], 'x', {}, { linux: [] }, { linux: { mountExtensions: 'idmap' } }]) assert.deepEqual(runtimeFeaturesOf(doc), RUNC_1_1_FEATURES, JSON.stringify(doc));
});

test('a runc with the mount extensions section but idmap disabled joins host-owned namespaces and makes no idmapped mounts', () => {
  assert.deepEqual(runtimeFeaturesOf({ linux: { mountExtensions: { idmap: { enabled: false } } } }), { idmapMounts: false, joinsHostOwnedNamespaces: true });
});

test('on runc 1.1, every idmapped bind is sysrunc\'s own mount made on the host\'s side', () => {
  const { spec: out, actions } = bindMountOwnership.apply(spec(), plan(RUNC_1_1));
  assert.deepEqual(actions.map((a) => a.kind === 'idmapped-mount' && [a.source, a.target]), [
    ['/var/lib/docker/containers/c0ffee0000c1/hosts', '/run/sysrunc/c1/mounts/1'],
    ['/srv/data', '/run/sysrunc/c1/mounts/2'],
    ['/srv/config', '/run/sysrunc/c1/mounts/3'],
  ]);
  assert.ok((out.mounts ?? []).every((m) => m.uidMappings === undefined && m.gidMappings === undefined));
});

test('on a runc that makes idmapped mounts, the engine\'s read-write file goes to runc with the container\'s mappings and no host action', () => {
  const { spec: out, actions } = bindMountOwnership.apply(spec(), plan(RUNC_1_3));
  assert.deepEqual(out.mounts?.[1], { destination: '/etc/hosts', type: 'bind', source: '/var/lib/docker/containers/c0ffee0000c1/hosts', options: ['rbind', 'rprivate', 'ridmap'], uidMappings: MAPPING, gidMappings: MAPPING });
  assert.ok(!actions.some((a) => a.kind === 'idmapped-mount' && a.source.includes('c0ffee0000c1')), JSON.stringify(actions));
});

test('a bind runc makes non-recursively gets "idmap", not "ridmap"', () => {
  const input = spec();
  input.mounts = (input.mounts ?? []).map((m, i) => (i === 1 ? { ...m, options: ['bind'] } : m));
  assert.deepEqual(bindMountOwnership.apply(input, plan(RUNC_1_3)).spec.mounts?.[1]?.options, ['bind', 'idmap']);
});

test('on a runc that makes idmapped mounts, a read-only bind stays sysrunc\'s, read-only on the host\'s side', () => {
  const { spec: out, actions } = bindMountOwnership.apply(spec(), plan(RUNC_1_3));
  assert.deepEqual(actions.find((a) => a.kind === 'idmapped-mount' && a.source === '/srv/config'), { kind: 'idmapped-mount', source: '/srv/config', target: '/run/sysrunc/c1/mounts/3', recursive: true, readOnly: true });
  assert.equal(out.mounts?.[3]?.source, '/run/sysrunc/c1/mounts/3');
  assert.equal(out.mounts?.[3]?.uidMappings, undefined);
});

test('on a runc that makes idmapped mounts, a read-write bind of any other source stays sysrunc\'s, pinned without following symlinks', () => {
  const { spec: out, actions } = bindMountOwnership.apply(spec(), plan(RUNC_1_3));
  assert.deepEqual(actions.find((a) => a.kind === 'idmapped-mount' && a.source === '/srv/data'), { kind: 'idmapped-mount', source: '/srv/data', target: '/run/sysrunc/c1/mounts/2', recursive: false, readOnly: false });
  assert.equal(out.mounts?.[2]?.uidMappings, undefined);
});

test('the whole pipeline\'s config with runc\'s idmapped binds validates against the OCI 1.3.0 schema', () => {
  const { spec: out } = runPipeline(spec(), plan(RUNC_1_3));
  assertValidConfig(out);
  assert.ok((out.mounts ?? []).some((m) => m.uidMappings !== undefined));
});

/** A process in an IPC namespace of its own, owned by the host's user namespace (no sysrunc container). */
async function withForeignIpcNamespace(fn: (path: string) => void): Promise<void> {
  const child = spawn('unshare', ['--ipc', 'sleep', '60'], { stdio: 'ignore' });
  try {
    const pid = child.pid ?? 0;
    // unshare execs sleep once the namespace is made: wait for the exec, not for a time.
    for (let i = 0; i < 1000 && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await new Promise((r) => setImmediate(r));
    fn(`/proc/${pid}/ns/ipc`);
  } finally {
    child.kill('SIGKILL');
  }
}

function joining(ipcPath: string): Spec {
  const s = spec();
  s.linux = { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc', path: ipcPath }, { type: 'uts' }, { type: 'mount' }] };
  return s;
}

test('on runc 1.1, joining a namespace no sysrunc container owns is refused with one line naming it', async () => {
  await withForeignIpcNamespace((ipc) => {
    assert.throws(() => sharedUserns('c2', joining(ipc), process.pid, [], RUNC_1_1), (err: Error) => err.message.includes(`linux.namespaces ipc path ${ipc} is not a namespace of a container sysrunc started`) && !err.message.includes('\n'));
  });
});

test('on a runc that joins host-owned namespaces itself, such a join is allowed and keeps the container\'s own user namespace', async () => {
  await withForeignIpcNamespace((ipc) => {
    assert.equal(sharedUserns('c2', joining(ipc), process.pid, [], RUNC_1_3), undefined);
  });
});

test('a rootfs the engine already shifted for the caller\'s user namespace is left as it is: no mount, root.path unchanged', () => {
  const shifted = { requested: DOCKER_ROOTFS, resolved: DOCKER_ROOTFS, kind: 'dir', overlay: undefined, shiftedByEngine: true } as const;
  const { spec: out, actions } = rootfsOwnership.apply(spec(), plan(RUNC_1_3, { rootfs: shifted }));
  assert.equal(out.root?.path, '/var/lib/docker/overlay2/abc/merged');
  assert.deepEqual(actions, []);
});
