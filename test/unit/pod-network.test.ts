// The pod-network transform: a CRI pod sandbox whose network namespace CNI set up on the host gets
// a network namespace of its own plus the hook that moves CNI's interfaces into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import type { Plan } from '../../src/spec-transform/types.ts';
import { podNetwork } from '../../src/spec-transform/pod-network.ts';
import { runPipeline } from '../../src/spec-transform/pipeline.ts';
import { assertValidConfig } from '../helpers/schema.ts';
import { NETNS_HOOK, planWith } from '../helpers/plan.ts';

const CNI_NETNS = '/var/run/netns/cni-1234';
const HOOK = NETNS_HOOK;

function sandboxSpec(annotations: Record<string, string> = { 'io.kubernetes.cri.container-type': 'sandbox' }, netns = CNI_NETNS): Spec {
  return {
    ociVersion: '1.1.0',
    process: { user: { uid: 65535, gid: 65535 }, args: ['/pause'], cwd: '/' },
    root: { path: '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs' },
    annotations,
    mounts: [{ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: netns }] },
  };
}

/** A host with pod support (the netns hook), creating the pod's sandbox abc. */
const plan = (overrides: Partial<Plan> = {}): Plan => planWith({ containerId: 'abc', netnsHook: HOOK, ...overrides });

const network = (spec: Spec) => spec.linux?.namespaces?.find((ns) => ns.type === 'network');

test('a CRI pod sandbox gets a network namespace of its own instead of joining the CNI one', () => {
  const { spec } = podNetwork.apply(sandboxSpec(), plan());
  assert.deepEqual(network(spec), { type: 'network' });
});

test('a CRI pod sandbox gets the createRuntime hook that adopts the CNI namespace\'s interfaces', () => {
  const { spec } = podNetwork.apply(sandboxSpec(), plan());
  assert.deepEqual(spec.hooks?.createRuntime, [{ path: HOOK, args: ['sysrunc-adopt-netns', CNI_NETNS] }]);
});

test('a CRI-O pod sandbox is recognised by its annotation too', () => {
  const { spec } = podNetwork.apply(sandboxSpec({ 'io.kubernetes.cri-o.ContainerType': 'sandbox' }), plan());
  assert.deepEqual(network(spec), { type: 'network' });
});

test('an app container (not a sandbox) keeps the network namespace it joins', () => {
  const app = sandboxSpec({ 'io.kubernetes.cri.container-type': 'container' }, '/proc/42/ns/net');
  assert.deepEqual(podNetwork.apply(app, plan()).spec, app);
});

test('a container joining a named network namespace outside a pod keeps it (e.g. ip netns)', () => {
  const plain = sandboxSpec({});
  assert.deepEqual(podNetwork.apply(plain, plan()).spec, plain);
});

test('a sandbox whose config brings its own user namespace keeps its network namespace', () => {
  const own = sandboxSpec();
  assert.deepEqual(podNetwork.apply(own, plan({ userns: { ...plan().userns, fromCaller: true } })).spec, own);
});

test('a sandbox sharing the host\'s network namespace is left to the system-container rules', () => {
  const host = sandboxSpec();
  assert.deepEqual(podNetwork.apply(host, plan({ hostNamespaces: new Set(['user', 'cgroup', 'time', 'network']) })).spec, host);
});

test('the whole pipeline gives a pod sandbox a valid config that mounts sysfs (its user namespace owns the network)', () => {
  const { spec } = runPipeline(sandboxSpec(), plan());
  assertValidConfig(spec);
  assert.equal(spec.mounts?.find((m) => m.destination === '/sys')?.type, 'sysfs');
  assert.deepEqual(network(spec), { type: 'network' });
});
