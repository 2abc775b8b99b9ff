// Issue 23: the DaemonSet's installer, on the node side, without a cluster: its image is built from
// the .deb (deploy/kubernetes/build-installer-image.sh on a debootstrapped base), and its container
// runs under a real dockerd against fake node roots (directories). On a node whose config.toml is
// a private containerd 1.6's own (version 2, CRI and CNI), a real containerd 1.6 then starts on the
// installer's result with the manager the installer put on the node, and a pod runs through the
// CRI API with handler sysrunc (test/rig/node-installer.ts); uninstall puts every file of the node
// root back byte for byte. A version 3 (containerd 2.x) result is parsed here (no containerd 2.x
// on Debian 12); test/stacks/node-installer-check.ts runs it on containerd 2.1 in the sid guest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ensureOciImageTar, execTool, startDockerd, type DockerDaemon } from '../rig/index.ts';
import { debianCachePaths, ensureDebianRootfs } from '../rig/debian-images.ts';
import { PAUSE_IMAGE } from '../rig/cri.ts';
import { ensurePauseImageTar } from '../rig/pause-image.ts';
import { makeNodeRoot, podUidMap, startNode, tree, type InstallerVerb, type NodeRun } from '../rig/node-installer.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = path.join(ROOT, 'dist', `sysrunc_${VERSION}_amd64.deb`);
const TAG = `sysrunc-installer:${VERSION}`;

const CONFIG_V2 = `version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`;
const CONFIG_V3 = `version = 3

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10"
`;

let work: string;
let dockerd: DockerDaemon;

function nodeRoot(name: string, config: string): string {
  return makeNodeRoot(path.join(work, name), config);
}

async function installer(root: string, verb: InstallerVerb): Promise<string> {
  const r = await dockerd.docker(['run', '--rm', '-v', `${root}:/host`, '-e', 'SYSRUNC_NODE_RESTART=0', TAG, verb], { reject: false });
  assert.equal(r.exitCode, 0, `${verb}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  work = mkdtempSync('/var/tmp/sysrunc-k8s-installer-');
  await execTool(process.execPath, [path.join(ROOT, 'scripts/package.mjs'), '--no-lintian'], process.env, { timeoutMs: 900_000 });
  await ensureDebianRootfs('dind');
  dockerd = await startDockerd({ name: 'e2e-k8s-inst', runtimes: {} });
  const base = path.join(debianCachePaths('dind').baseDir, 'rootfs');
  await execTool(path.join(ROOT, 'deploy/kubernetes/build-installer-image.sh'), [DEB, '--tag', TAG, '--base', base], { ...process.env, DOCKER_HOST: dockerd.host }, { timeoutMs: 600_000 });
});
after(async () => {
  await node?.stop();
  await dockerd?.stop({ purge: true });
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

test('install on a containerd 1.6 node: files in /opt/sysrunc, the manager unit, and the sysrunc handler that containerd 1.6 reads', async () => {
  const root = nodeRoot('v2', CONFIG_V2);
  await installer(root, 'install');
  assert.ok(existsSync(path.join(root, 'opt/sysrunc/dist/sysrunc')));
  assert.ok(existsSync(path.join(root, 'opt/sysrunc/bin/sysrunc')), 'the C launcher\'s fallback');
  assert.ok(existsSync(path.join(root, 'opt/sysrunc/dist/sysrunc-multi')));
  assert.match(readFileSync(path.join(root, 'etc/systemd/system/sysrunc-mgr.service'), 'utf8'), /^ExecStart=\/opt\/sysrunc\/dist\/sysrunc-mgr /m);
  const dump = execFileSync('containerd', ['--config', path.join(root, 'etc/containerd/config.toml'), 'config', 'dump'], { encoding: 'utf8' });
  assert.match(dump, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.sysrunc\.options\]\n\s+BinaryName = "\/opt\/sysrunc\/dist\/sysrunc"/);
  assert.match(dump, /sandbox_image = "registry\.k8s\.io\/pause:3\.9"/);
});

let node: NodeRun | undefined;

test('a real containerd 1.6 started on the installed node config runs a pod with handler sysrunc through the installed files', async () => {
  node = await startNode({
    name: 'e2e-k8s-node',
    configVersion: 2,
    installer,
    images: { pauseTar: await ensurePauseImageTar(PAUSE_IMAGE), appTar: await ensureOciImageTar() },
  });
  // The handler came from the installer alone: the node's config had only runc's before.
  assert.doesNotMatch(Buffer.from(node.before['etc/containerd/config.toml'] ?? '', 'base64').toString(), /runtimes\.sysrunc/);
  const [inside, outside] = (await podUidMap(node.rig, 'sysrunc')).split(' ');
  assert.equal(inside, '0');
  assert.notEqual(outside, '0');
  // The manager that prepared it is the node's /opt/sysrunc one, with the pod's container on record.
  assert.equal(readFileSync(`/proc/${node.manager.pid()}/cmdline`, 'utf8').split('\0')[0], '/opt/sysrunc/dist/sysrunc-mgr');
  const [, hostUid] = /"uid":(\d+)[^\n]*"registered container"/.exec(node.manager.log()) ?? [];
  assert.equal(hostUid, outside);
});

test('after the pod, uninstall puts the node root of that containerd back byte for byte', async () => {
  assert.ok(node, 'the node did not start');
  await node.stop();
  await installer(node.root, 'uninstall');
  assert.deepEqual(tree(node.root), node.before);
});

test('uninstall on the containerd 1.6 node puts every file back byte for byte', async () => {
  const root = nodeRoot('v2-round-trip', CONFIG_V2);
  const before_ = tree(root);
  await installer(root, 'install');
  await installer(root, 'uninstall');
  assert.deepEqual(tree(root), before_);
});

test('install on a containerd 2.x node: a conf.d drop-in with the handler, imported from config.toml', async () => {
  const root = nodeRoot('v3', CONFIG_V3);
  await installer(root, 'install');
  const main = parseToml(readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')) as { imports?: string[] };
  assert.deepEqual(main.imports, ['/etc/containerd/conf.d/sysrunc.toml']);
  const dropIn = readFileSync(path.join(root, 'etc/containerd/conf.d/sysrunc.toml'), 'utf8');
  assert.match(dropIn, /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.sysrunc\.options\]\n\s+BinaryName = "\/opt\/sysrunc\/dist\/sysrunc"/);
});

test('uninstall on the containerd 2.x node puts every file back byte for byte', async () => {
  const root = nodeRoot('v3-round-trip', CONFIG_V3);
  const before_ = tree(root);
  await installer(root, 'install');
  await installer(root, 'uninstall');
  assert.deepEqual(tree(root), before_);
});
