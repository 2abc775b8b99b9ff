// The capability rule (issue 19): a container that asked for nothing special (its capabilities
// include its engine's default set) gets the system-container grant; one that removed any default
// capability keeps exactly what it listed, and so does what is exec'd into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec.ts';
import { DEFAULT_SETTINGS } from '../../src/spec-transform/settings.ts';
import { grantsSystemCapabilities, systemCapabilities } from '../../src/spec-transform/system-capabilities.ts';
import { DOCKER_CONTAINERD_DEFAULT, PODMAN_DEFAULT, RUNC_SPEC_DEFAULT, engineOf, removedFromDefault } from '../../src/spec-transform/engine-capabilities.ts';
import { planWith } from '../helpers/plan.ts';

const HOST = ['CAP_CHOWN', 'CAP_NET_RAW', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN'];
const CRI = { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'f'.repeat(64) };

function specWith(caps: readonly string[] | undefined, extra: Partial<Spec> = {}): Spec {
  const capabilities = caps === undefined ? {} : { capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] } };
  return { ociVersion: '1.0.2', process: { cwd: '/', args: ['sh'], user: { uid: 0, gid: 0 }, ...capabilities }, root: { path: 'rootfs' }, ...extra };
}

/** A Docker config: its /etc/hostname in a directory named by the container's id. */
function dockerSpec(caps: readonly string[]): Spec {
  return specWith(caps, { mounts: [{ destination: '/etc/hostname', type: 'bind', source: '/var/lib/docker/containers/c1/hostname', options: ['rbind'] }] });
}

function effectiveAfter(spec: Spec): readonly string[] | undefined {
  return systemCapabilities.apply(spec, planWith({ hostCapabilities: HOST })).spec.process?.capabilities?.effective;
}

test('a Docker container with Docker\'s default capabilities gets every capability the host allows', () => {
  assert.deepEqual(effectiveAfter(dockerSpec(DOCKER_CONTAINERD_DEFAULT)), HOST);
});

test('a Docker container with --cap-drop NET_RAW keeps exactly its own capabilities, without NET_RAW', () => {
  const dropped = DOCKER_CONTAINERD_DEFAULT.filter((c) => c !== 'CAP_NET_RAW');
  assert.deepEqual(effectiveAfter(dockerSpec(dropped)), dropped);
});

test('a CRI container that drops ALL keeps no capability', () => {
  assert.deepEqual(effectiveAfter(specWith([], { annotations: CRI })), []);
});

test('a CRI container that adds NET_ADMIN to the default gets every capability the host allows', () => {
  assert.deepEqual(effectiveAfter(specWith([...DOCKER_CONTAINERD_DEFAULT, 'CAP_NET_ADMIN'], { annotations: CRI })), HOST);
});

test('a config with runc spec\'s default capabilities, from no known engine, gets every capability the host allows', () => {
  assert.deepEqual(effectiveAfter(specWith(RUNC_SPEC_DEFAULT)), HOST);
});

test('a Docker container narrowed to runc spec\'s three capabilities is measured against Docker\'s default', () => {
  assert.equal(engineOf(dockerSpec(RUNC_SPEC_DEFAULT), 'c1'), 'docker');
  assert.deepEqual(effectiveAfter(dockerSpec(RUNC_SPEC_DEFAULT)), RUNC_SPEC_DEFAULT);
});

test('a podman container with podman\'s default gets the grant, and one that dropped CHOWN does not', () => {
  const podman = { annotations: { 'io.container.manager': 'libpod' } };
  assert.deepEqual(effectiveAfter(specWith(PODMAN_DEFAULT, podman)), HOST);
  const dropped = PODMAN_DEFAULT.filter((c) => c !== 'CAP_CHOWN');
  assert.deepEqual(removedFromDefault(specWith(dropped, podman), 'podman'), ['CAP_CHOWN']);
  assert.deepEqual(effectiveAfter(specWith(dropped, podman)), dropped);
});

test('a config that lists no capabilities at all asked for nothing special', () => {
  assert.deepEqual(effectiveAfter(specWith(undefined)), HOST);
});

test('what is exec\'d into a container is granted only when its init was', () => {
  const dropped = DOCKER_CONTAINERD_DEFAULT.filter((c) => c !== 'CAP_NET_RAW');
  assert.equal(grantsSystemCapabilities(dockerSpec(DOCKER_CONTAINERD_DEFAULT), 'docker', DEFAULT_SETTINGS), true);
  assert.equal(grantsSystemCapabilities(dockerSpec(dropped), 'docker', DEFAULT_SETTINGS), false);
  assert.equal(grantsSystemCapabilities(dockerSpec(DOCKER_CONTAINERD_DEFAULT), 'docker', { ...DEFAULT_SETTINGS, capabilities: 'caller' }), false);
});
