// Issue 23 on containerd 2.x, the stack matrix's `installer-containerd` check (guest-checks.sh runs
// it in the guest): what the DaemonSet's installer runs on a node (`sysrunc-ctl install
// containerd`), with three config.toml files in turn: none; the distribution's own (Debian's is
// still version 2); and `containerd config default` (version 3, `imports = []`). For each: the
// node's containerd starts on the result, sees handler "sysrunc" beside the config's own runtimes
// (its `config dump`: an imported drop-in is merged key by key, not put in place of the file's
// runtimes table), runs a pod of two busybox containers under it through the CRI API, both in one
// user namespace of a non-zero host range; then the uninstall leaves /etc/containerd as it was,
// byte for byte. Prints one line per config; exit 0 = all passed.
// The guest is the node: its own /etc/containerd (the drop-in's import is an absolute path, and
// the guest's sysrunc-mgr mounts the containers' root filesystems where this containerd must see
// them, so no mount namespace of its own), its file put back at the end. The guest's containerd
// read its config when it started and keeps running; this one runs on private root, state and
// socket (flags). It refuses to run outside a stack guest.
// usage: installer-containerd-check.ts <pause-image.tar> <busybox-image.tar>
import { randomUUID } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { startContainerd, type ContainerdDaemon } from '../rig/containerd.ts';
import { APP_IMAGE, criClient, PAUSE_IMAGE } from '../rig/cri.ts';
import { criRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { startTwoAppsUidMaps } from './two-apps.ts';
import { ensureContainerdImage } from '../rig/images.ts';
import { tree } from '../rig/node-installer.ts';
import { bins, REPO_ROOT, rigDirs } from '../rig/paths.ts';

const [pauseTar, appTar] = process.argv.slice(2);
if (pauseTar === undefined || appTar === undefined) throw new Error('usage: installer-containerd-check.ts <pause-image.tar> <busybox-image.tar>');
if (!readFileSync('/proc/cmdline', 'utf8').includes('sysrunc.stack=check')) throw new Error('installer-containerd-check.ts edits /etc/containerd: it runs only in a stack guest (scripts/test-stacks.sh)');
const ETC = '/etc/containerd';
const CONFIG = path.join(ETC, 'config.toml');
const SYSRUNC_CTL = path.join(REPO_ROOT, 'bin', 'sysrunc-ctl');
const CNI_CONF = '/etc/cni/net.d/10-sysrunc-node.conflist';
const BRIDGE = 'srt-node0';

/** containerd's default for a config that does not name the pod sandbox image (none of these do). */
function defaultSandboxImage(): string {
  const m = /^\s*sandbox(?:_image)?\s*=\s*['"]([^'"]+)['"]/m.exec(execFileSync(bins.containerd, ['config', 'default'], { encoding: 'utf8' }));
  if (m?.[1] === undefined) throw new Error('containerd config default names no sandbox image');
  return m[1];
}

function ctl(verb: 'install' | 'uninstall'): string {
  const args = [verb, 'containerd', ...(verb === 'install' ? ['--runtime-path', '/usr/local/bin/sysrunc'] : [])];
  return execFileSync(SYSRUNC_CTL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** How the installer put the handler in: which file, which config version. */
function form(): string {
  const main = readFileSync(CONFIG, 'utf8');
  const version = String((parseToml(main) as { version?: unknown }).version ?? 1);
  if (main.includes('conf.d/sysrunc.toml')) return `version ${version}, drop-in conf.d/sysrunc.toml imported`;
  return `version ${version}, tables appended to config.toml`;
}

/** The CRI runtime handlers containerd made of config.toml and its imports. */
function handlersSeen(): string[] {
  const dump = execFileSync(bins.containerd, ['--config', CONFIG, 'config', 'dump'], { encoding: 'utf8' });
  return [...dump.matchAll(/^\s*\[plugins\.['"](?:io\.containerd\.cri\.v1\.runtime|io\.containerd\.grpc\.v1\.cri)['"]\.containerd\.runtimes\.([A-Za-z0-9_-]+)\]\s*$/gm)].map((m) => m[1] ?? '');
}

// The rig's private root, state and socket as flags after the rig's `containerd --config <file>`.
const PRIVATE_PATHS = 'croot=$1 cstate=$2 addr=$3; shift 3; exec "$@" --root "$croot" --state "$cstate" --address "$addr"';

async function nodeContainerd(name: string): Promise<ContainerdDaemon> {
  return startContainerd({
    name,
    namespace: 'k8s.io',
    startTimeoutMs: 300_000,
    prepare: (rigConfig) => {
      const c = parseToml(rigConfig) as { root: string; state: string; grpc: { address: string } };
      return Promise.resolve({ configFile: CONFIG, wrapper: ['sh', '-c', PRIVATE_PATHS, 'node-containerd', c.root, c.state, c.grpc.address] });
    },
  });
}

/** A pod of two busybox apps under handler sysrunc: their uid_maps. */
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
      return await startTwoAppsUidMaps(cri, pod, config);
    } finally {
      await cri.stopPodSandbox(pod);
      await cri.removePodSandbox(pod);
    }
  } finally {
    client.close();
  }
}

/** One config.toml (undefined: none), from install to uninstall; its report line, or throws. */
async function onNode(label: string, config: string | undefined, sandboxImage: string): Promise<string> {
  const name = `stack-inst-${label}`;
  rmSync(CONFIG, { force: true });
  if (config !== undefined) writeFileSync(CONFIG, config);
  const before = tree(ETC);
  ctl('install');
  const how = form();
  const seen = handlersSeen();
  if (!seen.includes('sysrunc') || !seen.includes('runc')) throw new Error(`containerd's config dump has runtimes [${seen.join(', ')}]: not runc and sysrunc`);
  const containerd = await nodeContainerd(name);
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
  ctl('uninstall');
  const after = tree(ETC);
  // conf.d, made for the drop-in, stays empty on purpose (containerd 2.2's default import directory).
  const keptEmpty = after['conf.d'] === '<dir>' && before['conf.d'] === undefined && !Object.keys(after).some((k) => k.startsWith('conf.d/'));
  if (keptEmpty) delete after['conf.d'];
  const [inside, outside] = (maps[0] ?? '').split(' ');
  if (maps[0] !== maps[1]) throw new Error(`the two apps have different user namespaces: ${maps.join(' / ')}`);
  if (inside !== '0' || outside === '0') throw new Error(`the sysrunc pod's uid_map is ${maps[0] ?? '?'}`);
  if (!isDeepStrictEqual(after, before)) {
    const changed = [...new Set([...Object.keys(after), ...Object.keys(before)])].filter((k) => after[k] !== before[k]);
    throw new Error(`after uninstall /etc/containerd differs from before install: ${changed.join(', ')}`);
  }
  return `${label} (${how}): containerd sees runtimes ${seen.join(', ')}; two apps share uid_map ${maps[0] ?? '?'}; uninstall: byte for byte as before${keptEmpty ? ' (conf.d left empty)' : ''}`;
}

const distribution = existsSync(CONFIG) ? readFileSync(CONFIG) : undefined;
const nodes: [string, string | undefined][] = [
  ['none', undefined],
  ['distribution', distribution?.toString('utf8')],
  ['default', execFileSync(bins.containerd, ['config', 'default'], { encoding: 'utf8' })],
];
const version = execFileSync(bins.containerd, ['--version'], { encoding: 'utf8' }).split(' ')[2] ?? '?';
const sandboxImage = defaultSandboxImage();
// The network addon's CNI config: a bridge on a subnet only this machine has (no traffic leaves it).
mkdirSync(path.dirname(CNI_CONF), { recursive: true });
writeFileSync(
  CNI_CONF,
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'sysrunc-node',
    plugins: [{ type: 'bridge', bridge: BRIDGE, isGateway: false, ipMasq: false, ipam: { type: 'host-local', dataDir: '/run/sysrunc-test/node-ipam', ranges: [[{ subnet: '10.231.78.0/24' }]] } }, { type: 'loopback' }],
  }),
);
let failed = 0;
const lines: string[] = [];
try {
  for (const [label, config] of nodes) {
    if (label === 'distribution' && config === undefined) continue;
    try {
      lines.push(await onNode(label, config, sandboxImage));
    } catch (err) {
      failed++;
      lines.push(`${label}: FAIL ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}`);
    }
    console.log(lines[lines.length - 1]);
  }
} finally {
  rmSync(CNI_CONF, { force: true });
  rmSync(path.join(ETC, 'conf.d/sysrunc.toml'), { force: true });
  rmSync(`${CONFIG}.sysrunc-install.json`, { force: true });
  if (distribution === undefined) rmSync(CONFIG, { force: true });
  else writeFileSync(CONFIG, distribution);
}
console.log(`containerd ${version}: ${lines.join('; ')}`);
process.exit(failed === 0 ? 0 : 1);
