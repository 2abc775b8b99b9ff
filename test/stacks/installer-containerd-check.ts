// Issue 23 on containerd 2.x, the stack matrix's `installer-containerd` check (guest-checks.sh runs
// it in the guest): what the DaemonSet's installer runs on a node (`sysrunc-ctl install containerd
// --root <node>`), on three node roots: no config.toml; the distribution's own config.toml (Debian's
// is still version 2); and `containerd config default` (version 3, `imports = []`). For each: the
// node's containerd (this machine's binary) starts on the result, sees handler "sysrunc" beside the
// config's own runtimes (its `config dump`: an imported drop-in is merged key by key, not put in
// place of the file's runtimes table), runs a pod of two busybox containers under it through the
// CRI API, both in one user namespace of a non-zero host range; then the uninstall leaves the node
// root as it was, byte for byte. Prints one line per node root; exit 0 = all passed.
// usage: installer-containerd-check.ts <pause-image.tar> <busybox-image.tar> [distribution config.toml]
// Off the guests (a machine without a sysrunc-mgr of its own, containerd 2.x's binaries named by
// SYSRUNC_TEST_CONTAINERD / SYSRUNC_TEST_CTR and first on PATH for its shim): SYSRUNC_CHECK_TEST_MANAGER=1
// runs it with the checkout's bin/sysrunc and a private manager.
import { randomUUID } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { startContainerd, type ContainerdDaemon } from '../rig/containerd.ts';
import { APP_IMAGE, criClient, PAUSE_IMAGE } from '../rig/cri.ts';
import { criRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { ensureContainerdImage } from '../rig/images.ts';
import { tree } from '../rig/node-installer.ts';
import { bins, REPO_ROOT, RIG_LIB_DIR, rigDirs } from '../rig/paths.ts';
import { SYSRUNC as TEST_SYSRUNC, startTestManager } from '../helpers/manager.ts';

const [pauseTar, appTar, distributionConfig = '/etc/containerd/config.toml'] = process.argv.slice(2);
if (pauseTar === undefined || appTar === undefined) throw new Error('usage: installer-containerd-check.ts <pause-image.tar> <busybox-image.tar> [distribution config.toml]');
const ownManager = process.env['SYSRUNC_CHECK_TEST_MANAGER'] === '1' ? await startTestManager({ name: 'stack-inst' }) : undefined;
const SYSRUNC = ownManager === undefined ? '/usr/local/bin/sysrunc' : TEST_SYSRUNC;
const SYSRUNC_CTL = path.join(REPO_ROOT, 'bin', 'sysrunc-ctl');
const BRIDGE = 'srt-node0';

/** containerd's default for a config that does not name the pod sandbox image (none of these do). */
function defaultSandboxImage(): string {
  const m = /^\s*sandbox(?:_image)?\s*=\s*['"]([^'"]+)['"]/m.exec(execFileSync(bins.containerd, ['config', 'default'], { encoding: 'utf8' }));
  if (m?.[1] === undefined) throw new Error('containerd config default names no sandbox image');
  return m[1];
}

/**
 * A node root: /etc/containerd (with config.toml or without), the network addon's CNI config, and
 * links to this machine's containerd and runc (the installer asks them their versions).
 */
function makeNode(root: string, config: string | undefined, ipamDir: string): void {
  rmSync(root, { recursive: true, force: true });
  for (const d of ['etc/containerd', 'etc/cni/net.d', 'usr/bin', 'usr/sbin']) mkdirSync(path.join(root, d), { recursive: true });
  if (config !== undefined) writeFileSync(path.join(root, 'etc/containerd/config.toml'), config);
  symlinkSync(bins.containerd, path.join(root, 'usr/bin/containerd'));
  symlinkSync(execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim(), path.join(root, 'usr/sbin/runc'));
  // A bridge on a subnet only this machine has (no traffic leaves it).
  writeFileSync(
    path.join(root, 'etc/cni/net.d/10-node.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'sysrunc-node',
      plugins: [{ type: 'bridge', bridge: BRIDGE, isGateway: false, ipMasq: false, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.231.78.0/24' }]] } }, { type: 'loopback' }],
    }),
  );
}

function ctl(root: string, verb: 'install' | 'uninstall'): string {
  const args = [verb, 'containerd', '--root', root, ...(verb === 'install' ? ['--runtime-path', SYSRUNC] : [])];
  return execFileSync(SYSRUNC_CTL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** How the installer put the handler in: which file, which config version. */
function form(root: string): string {
  const main = readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8');
  const version = String((parseToml(main) as { version?: unknown }).version ?? 1);
  if (main.includes('conf.d/sysrunc.toml')) return `version ${version}, drop-in conf.d/sysrunc.toml imported`;
  return `version ${version}, tables appended to config.toml`;
}

// $1 the node root, then containerd's argv (the rig appends `--config <file>`), then the rig's
// private root, state and socket as flags (the node's config keeps its own). The node's
// /etc/containerd (the drop-in's absolute path) and CNI config are bound over this machine's,
// in a mount namespace of containerd's own; the shim and runtime inherit it.
const NODE_NAMESPACE = 'root=$1 croot=$2 cstate=$3 addr=$4; shift 4; for d in /etc/containerd /etc/cni/net.d; do mount --bind "$root$d" "$d" || exit 1; done; exec "$@" --root "$croot" --state "$cstate" --address "$addr"';

async function nodeContainerd(name: string, root: string): Promise<ContainerdDaemon> {
  mkdirSync('/etc/cni/net.d', { recursive: true });
  return startContainerd({
    name,
    namespace: 'k8s.io',
    startTimeoutMs: 300_000,
    env: ownManager?.env ?? {},
    prepare: (rigConfig) => {
      const c = parseToml(rigConfig) as { root: string; state: string; grpc: { address: string } };
      const wrapper = ['unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', NODE_NAMESPACE, 'sysrunc-node', root, c.root, c.state, c.grpc.address];
      return Promise.resolve({ configFile: '/etc/containerd/config.toml', wrapper });
    },
  });
}

/** The CRI runtime handlers containerd made of the node's config (and its imports). */
function handlersSeen(root: string): string[] {
  const dump = execFileSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$1/etc/containerd" /etc/containerd && exec "$2" --config /etc/containerd/config.toml config dump', 'sysrunc-node', root, bins.containerd], { encoding: 'utf8' });
  return [...dump.matchAll(/^\s*\[plugins\.['"](?:io\.containerd\.cri\.v1\.runtime|io\.containerd\.grpc\.v1\.cri)['"]\.containerd\.runtimes\.([A-Za-z0-9_-]+)\]\s*$/gm)].map((m) => m[1] ?? '');
}

/** A pod of two busybox apps under handler sysrunc: their uid_map (one line if they share it). */
async function twoAppPod(containerd: ContainerdDaemon, logDir: string): Promise<string[]> {
  const client = criClient(containerd.address);
  const cri = criRuntime(client);
  const config: PodSandboxConfig = {
    metadata: { name: 'node-pod', uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: logDir,
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  try {
    const pod = await cri.runPodSandbox(config, 'sysrunc');
    try {
      const maps: string[] = [];
      for (const i of [0, 1]) {
        const id = await cri.createContainer(pod, { metadata: { name: `app${i}`, attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: `app${i}.log` }, config);
        await cri.startContainer(id);
        const r = await cri.execSync(id, ['cat', '/proc/self/uid_map'], 120);
        if (r.exitCode !== 0) throw new Error(`exec in app${i}: ${r.stderr.trim()}`);
        maps.push(r.stdout.trim().replace(/\s+/g, ' '));
      }
      return maps;
    } finally {
      await cri.stopPodSandbox(pod);
      await cri.removePodSandbox(pod);
    }
  } finally {
    client.close();
  }
}

/** One node root, from install to uninstall; its report line, or throws. */
async function onNode(label: string, config: string | undefined, sandboxImage: string): Promise<string> {
  const name = `stack-inst-${label}`;
  // Beside the rig's dirs, not in them (starting the rig cleans those).
  const root = path.join(RIG_LIB_DIR, 'nodes', label);
  const ipamDir = path.join(RIG_LIB_DIR, 'nodes', `${label}.ipam`);
  rmSync(ipamDir, { recursive: true, force: true });
  makeNode(root, config, ipamDir);
  const before = tree(root);
  ctl(root, 'install');
  const how = form(root);
  const seen = handlersSeen(root);
  if (!seen.includes('sysrunc') || !seen.includes('runc')) throw new Error(`containerd's config dump has runtimes [${seen.join(', ')}]: not runc and sysrunc`);
  const containerd = await nodeContainerd(name, root);
  let maps: string[];
  try {
    await ensureContainerdImage(containerd, PAUSE_IMAGE, undefined, () => Promise.resolve(pauseTar as string));
    await containerd.ctr(['images', 'tag', '--force', PAUSE_IMAGE, sandboxImage]);
    await ensureContainerdImage(containerd, APP_IMAGE, undefined, () => Promise.resolve(appTar as string));
    const logDir = path.join(rigDirs(name).lib, 'pod-logs');
    mkdirSync(logDir, { recursive: true });
    maps = await twoAppPod(containerd, logDir);
  } finally {
    await containerd.stop();
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
  }
  ctl(root, 'uninstall');
  const after = tree(root);
  // conf.d, made for the drop-in, stays empty on purpose (containerd 2.2's default import directory).
  const keptEmpty = after['etc/containerd/conf.d'] === '<dir>' && before['etc/containerd/conf.d'] === undefined && !Object.keys(after).some((k) => k.startsWith('etc/containerd/conf.d/'));
  if (keptEmpty) delete after['etc/containerd/conf.d'];
  const [inside, outside] = (maps[0] ?? '').split(' ');
  if (maps[0] !== maps[1]) throw new Error(`the two apps have different user namespaces: ${maps.join(' / ')}`);
  if (inside !== '0' || outside === '0') throw new Error(`the sysrunc pod's uid_map is ${maps[0] ?? '?'}`);
  if (!isDeepStrictEqual(after, before)) {
    const changed = [...new Set([...Object.keys(after), ...Object.keys(before)])].filter((k) => after[k] !== before[k]);
    throw new Error(`after uninstall the node root differs from before install: ${changed.join(', ')}`);
  }
  return `${label} (${how}): containerd sees runtimes ${seen.join(', ')}; two apps share uid_map ${maps[0] ?? '?'}; uninstall: byte for byte as before${keptEmpty ? ' (conf.d left empty)' : ''}`;
}

const nodes: [string, string | undefined][] = [
  ['none', undefined],
  ['distribution', readFileSync(distributionConfig, 'utf8')],
  ['default', execFileSync(bins.containerd, ['config', 'default'], { encoding: 'utf8' })],
];
const version = execFileSync(bins.containerd, ['--version'], { encoding: 'utf8' }).split(' ')[2] ?? '?';
const sandboxImage = defaultSandboxImage();
let failed = 0;
const lines: string[] = [];
for (const [label, config] of nodes) {
  try {
    lines.push(await onNode(label, config, sandboxImage));
  } catch (err) {
    failed++;
    lines.push(`${label}: FAIL ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}`);
  }
  console.log(lines[lines.length - 1]);
}
await ownManager?.dispose();
console.log(`containerd ${version}: ${lines.join('; ')}`);
process.exit(failed === 0 ? 0 : 1);
