// The DaemonSet's node side without a cluster (issue 23). A node root is a directory; the
// installer's container (deploy/kubernetes/sysrunc-node-installer) runs on it under a real dockerd,
// and the node's containerd then starts on the config the installer left there, with sysrunc's
// files and manager from the node's /opt/sysrunc. Both run in a mount namespace of their own where
// the node root's /opt and /etc/containerd are bound over the machine's (so the handler's
// BinaryName and a version 3 config's `imports` resolve on the node, as on a real one); nothing
// of it is visible outside that namespace. Shared by test/e2e/kubernetes-installer.test.ts
// (containerd 1.6, config version 2) and test/stacks/node-installer-check.ts (containerd 2.x in
// the sid guest, version 3).
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { APP_IMAGE, startCriRig, type CriRig, type CriRigImages } from './cri.ts';
import { criRuntime, type PodSandboxConfig } from './cri-api.ts';
import { execTool } from './exec.ts';
import { bins, rigDirs } from './paths.ts';

export type Tree = Record<string, string>;
export type InstallerVerb = 'install' | 'uninstall';
/** Runs the installer's container on a node root (`docker run -v <root>:/host <image> <verb>`); its output. */
export type RunInstaller = (root: string, verb: InstallerVerb) => Promise<string>;

/** Every path under a directory with its bytes (directories and links marked). */
export function tree(root: string): Tree {
  const out: Tree = {};
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    out[path.relative(root, p)] = e.isFile() ? readFileSync(p).toString('base64') : e.isSymbolicLink() ? '<link>' : '<dir>';
  }
  return out;
}

/**
 * A node root: its containerd config, /opt, and a runc for the installer's host check (a stand-in
 * that answers --version: the installer's container cannot run the machine's runc).
 */
export function makeNodeRoot(root: string, config: string): string {
  for (const d of ['etc/containerd/conf.d', 'opt', 'usr/sbin', 'etc/systemd/system']) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, 'etc/containerd/config.toml'), config);
  writeFileSync(path.join(root, 'usr/sbin/runc'), '#!/bin/sh\necho "runc version 1.1.5"\n');
  chmodSync(path.join(root, 'usr/sbin/runc'), 0o755);
  return root;
}

// $1 the node root, $2 the manager binary, then its arguments. The binds are private to the
// namespace unshare makes; the manager is its first process, containerd joins it (nsenter).
const NODE_NAMESPACE = 'root=$1 mgr=$2; shift 2; for d in /opt /etc/containerd; do mount --bind "$root$d" "$d" || exit 1; done; exec "$mgr" "$@"';

export interface NodeRun {
  readonly root: string;
  /** The node root as it was before the installer ran. */
  readonly before: Tree;
  /** The installer's output (install). */
  readonly installed: string;
  readonly rig: CriRig;
  readonly manager: TestManager;
  /** Stops containerd, then the manager. */
  stop(): Promise<void>;
}

export interface NodeOptions {
  /** A rig name ([a-z0-9-]); the node root is /var/lib/sysrunc-test/<name>/node. */
  readonly name: string;
  /** 2: the rig's config as it is (containerd 1.6/1.7); 3: that config after `containerd config migrate` (2.x). */
  readonly configVersion: 2 | 3;
  readonly installer: RunInstaller;
  /** The pause and busybox images as OCI tars (default: built by the rig). */
  readonly images?: CriRigImages;
}

/**
 * The node root made with a private containerd's own config (the rig's, CRI and CNI included), the
 * installer run on it, then the manager of the unit the installer wrote and containerd on the
 * node's config.toml, both in the node's mount namespace.
 */
export async function startNode(o: NodeOptions): Promise<NodeRun> {
  const root = path.join(rigDirs(o.name).lib, 'node');
  let before: Tree = {};
  let installed = '';
  let manager: TestManager | undefined;
  const rig = await startCriRig(o.name, {}, { SYSRUNC_MGR_SOCKET: path.join('/run/sysrunc-test', `mgr-${o.name}`, 'mgr.sock') }, {
    ...(o.images === undefined ? {} : { images: o.images }),
    prepare: async (rigConfig) => {
      await execTool('rm', ['-rf', root], process.env);
      makeNodeRoot(root, o.configVersion === 2 ? rigConfig : await migrated(rigConfig, root));
      before = tree(root);
      installed = await o.installer(root, 'install');
      // The unit's binary; its paths (/run/sysrunc, /var/lib/sysrunc, /etc/subuid) are the test
      // manager's private ones instead, so the machine's own sysrunc is never touched.
      const unit = readFileSync(path.join(root, 'etc/systemd/system/sysrunc-mgr.service'), 'utf8');
      const binary = /^ExecStart=(\S+)/m.exec(unit)?.[1];
      if (binary === undefined) throw new Error(`the installer's sysrunc-mgr.service has no ExecStart:\n${unit}`);
      manager = await startTestManager({ name: o.name, command: ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', NODE_NAMESPACE, 'sysrunc-node', root, binary] });
      return { configFile: path.join(root, 'etc/containerd/config.toml'), wrapper: ['nsenter', `--mount=/proc/${manager.pid()}/ns/mnt`, '--'] };
    },
  }).catch(async (err: unknown) => {
    await manager?.dispose();
    throw err;
  });
  if (manager === undefined) throw new Error('the node manager did not start');
  const mgr = manager;
  let stopped = false;
  return {
    root,
    before,
    installed,
    rig,
    manager: mgr,
    async stop() {
      if (stopped) return;
      stopped = true;
      await rig.stop();
      await mgr.dispose();
    },
  };
}

/** The rig's version 2 config as containerd 2.x writes it in version 3. */
async function migrated(config: string, scratch: string): Promise<string> {
  mkdirSync(scratch, { recursive: true });
  const v2 = path.join(scratch, 'config-v2.toml');
  writeFileSync(v2, config);
  const r = await execTool(bins.containerd, ['--config', v2, 'config', 'migrate'], process.env);
  await execTool('rm', ['-f', v2], process.env);
  if (!/^version = 3$/m.test(r.stdout)) throw new Error(`containerd config migrate did not write version 3:\n${r.stdout}`);
  return r.stdout;
}

/**
 * A pod with one busybox app under `handler`, through the CRI API: the app's uid_map, read by an
 * exec in it; the pod is then stopped and removed.
 */
export async function podUidMap(rig: CriRig, handler: string): Promise<string> {
  const cri = criRuntime(rig.cri);
  const name = `node-pod-${handler}`;
  const config: PodSandboxConfig = {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: path.join(rig.logDir, name),
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  const pod = await cri.runPodSandbox(config, handler);
  try {
    const id = await cri.createContainer(pod, { metadata: { name: 'app', attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: 'app.log' }, config);
    await cri.startContainer(id);
    const r = await cri.execSync(id, ['cat', '/proc/self/uid_map'], 120);
    if (r.exitCode !== 0) throw new Error(`exec in the pod's app: ${r.stderr.trim()}`);
    return r.stdout.trim().replace(/\s+/g, ' ');
  } finally {
    await cri.stopPodSandbox(pod);
    await cri.removePodSandbox(pod);
  }
}
