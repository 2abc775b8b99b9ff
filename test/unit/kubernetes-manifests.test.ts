// Issue 23: deploy/kubernetes/ validates offline against the Kubernetes API schema
// (kubernetes-models: the OpenAPI schema of each kind, compiled), and agrees with the installer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ServiceAccount } from 'kubernetes-models/v1';
import { RuntimeClass } from 'kubernetes-models/node.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';

const DIR = path.resolve(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');
const VERSION = (JSON.parse(readFileSync(path.resolve(DIR, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
const INSTALLER = readFileSync(path.join(DIR, 'sysrunc-node-installer'), 'utf8');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [key: string]: unknown;
}
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1 DaemonSet': DaemonSet,
  'v1 ServiceAccount': ServiceAccount,
  'node.k8s.io/v1 RuntimeClass': RuntimeClass,
  'rbac.authorization.k8s.io/v1 ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': ClusterRoleBinding,
};

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJS() as Manifest;
  });
}
function validate(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion} ${m.kind}`];
  assert.ok(Model, `no schema for ${m.apiVersion} ${m.kind}`);
  new Model(m as never).validate();
}

for (const file of ['sysrunc-deploy.yaml', 'runtimeclass.yaml']) {
  test(`${file} validates against the Kubernetes API schema`, () => {
    for (const m of manifests(file)) validate(m);
  });
}

test('the validator rejects a manifest with a wrongly typed field (it is not a no-op)', () => {
  const [rc] = manifests('runtimeclass.yaml');
  assert.ok(rc);
  assert.throws(() => validate({ ...rc, handler: 7 } as unknown as Manifest), /handler must be string/);
});

test('the RuntimeClass selects the handler and the node label that the installer sets up', () => {
  const [rc] = manifests('runtimeclass.yaml') as Array<Manifest & { handler: string; scheduling: { nodeSelector: Record<string, string> } }>;
  assert.equal(rc?.handler, 'sysrunc');
  assert.deepEqual(rc?.scheduling.nodeSelector, { 'sysrunc.io/runtime': 'ready' });
  assert.match(INSTALLER, /^LABEL=sysrunc\.io\/runtime$/m);
  assert.match(INSTALLER, /label_node '"ready"'/);
});

test('the DaemonSet runs the installer image of this version with the node root at /host', () => {
  const ds = manifests('sysrunc-deploy.yaml').find((m) => m.kind === 'DaemonSet') as unknown as {
    spec: { template: { spec: { containers: Array<{ image: string; volumeMounts: Array<{ mountPath: string; name: string }> }>; volumes: Array<{ name: string; hostPath?: { path: string } }> } } };
  };
  const pod = ds.spec.template.spec;
  assert.equal(pod.containers[0]?.image, `sysrunc-installer:${VERSION}`);
  const mount = pod.containers[0]?.volumeMounts.find((v) => v.mountPath === '/host');
  assert.equal(pod.volumes.find((v) => v.name === mount?.name)?.hostPath?.path, '/');
});
