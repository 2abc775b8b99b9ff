// The stack VMs' check of Kubernetes pod user namespaces (hostUsers: false) through containerd 2.x's
// CRI plugin (scripts/stacks/guest-checks.sh runs it with tsx, inside the guest): the kubelet picks
// a pod's id range and sends it as userns_options (mode POD, uids, gids) on the sandbox and on each
// container. sysrunc honours that range: both apps run in it, the manager allocates nothing for the
// pod (no second range for the same pod); a range that overlaps sysrunc's own pool is refused with
// one line naming the overlap, and nothing is left.
// usage: cri-userns-check.ts <pause-image.tar> <busybox-image.tar> [state dir, default /var/lib/sysrunc]
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { APP_IMAGE, startCriRig } from '../rig/cri.ts';
import { criRuntime, type ContainerConfig, type PodSandboxConfig } from '../rig/cri-api.ts';

const [pauseTar, appTar, stateDir = '/var/lib/sysrunc'] = process.argv.slice(2);
if (pauseTar === undefined || appTar === undefined) throw new Error('usage: cri-userns-check.ts <pause-image.tar> <busybox-image.tar> [state dir]');

/** NamespaceMode POD = 0 (api.proto); the kubelet's ranges are multiples of 65536. */
const POD = 0;
const SIZE = 65536;
/** Far above sysrunc's default pool (0x10000000 + 2^26), as a kubelet's own subuid range would be. */
const KUBELET_BASE = 40_000 * SIZE;

interface UsernsOptions {
  readonly mode: number;
  readonly uids: readonly { host_id: number; container_id: number; length: number }[];
  readonly gids: readonly { host_id: number; container_id: number; length: number }[];
}
const usernsAt = (hostId: number): UsernsOptions => ({
  mode: POD,
  uids: [{ host_id: hostId, container_id: 0, length: SIZE }],
  gids: [{ host_id: hostId, container_id: 0, length: SIZE }],
});

/** A pod config as the kubelet sends it for hostUsers: false (the rig's types leave userns out). */
function podConfig(name: string, userns: UsernsOptions, logDir: string): PodSandboxConfig {
  const config = {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: `${logDir}/${name}`,
    linux: { security_context: { namespace_options: { network: POD, pid: 1, ipc: POD, userns_options: userns } } },
  };
  return config;
}
function appConfig(name: string, userns: UsernsOptions): ContainerConfig {
  const config = {
    metadata: { name, attempt: 0 },
    image: { image: APP_IMAGE },
    command: ['sleep', '100000'],
    log_path: `${name}.log`,
    linux: { security_context: { namespace_options: { pid: 1, userns_options: userns } } },
  };
  return config;
}

/** sysrunc's own pool: the first sysrunc line of /etc/subuid. */
function sysruncPool(): { start: number; size: number } {
  const line = readFileSync('/etc/subuid', 'utf8').split('\n').find((l) => l.startsWith('sysrunc:'));
  const [, start, size] = (line ?? '').split(':').map(Number);
  if (start === undefined || size === undefined || Number.isNaN(start)) throw new Error('no sysrunc line in /etc/subuid');
  return { start, size };
}
const allocatedIds = (): string[] => (JSON.parse(readFileSync(path.join(stateDir, 'subid.json'), 'utf8')) as { allocations: { id: string }[] }).allocations.map((a) => a.id);

// containerd under emulation, beside other guests, may take more than the rig's default 30 s to answer.
const rig = await startCriRig('stack-cri-userns', { sysrunc: '/usr/local/bin/sysrunc' }, {}, { images: { pauseTar, appTar }, startTimeoutMs: 300_000 });
const cri = criRuntime(rig.cri);
let verdict = 'fail';
try {
  // 1. The kubelet's range, outside sysrunc's pool: honoured, nothing allocated for the pod.
  const userns = usernsAt(KUBELET_BASE);
  const config = podConfig('userns-pod', userns, rig.logDir);
  const pod = await cri.runPodSandbox(config, 'sysrunc');
  const maps: string[] = [];
  const ids = [pod];
  for (const i of [0, 1]) {
    const id = await cri.createContainer(pod, appConfig(`app${i}`, userns), config);
    ids.push(id);
    await cri.startContainer(id);
    const r = await cri.execSync(id, ['cat', '/proc/self/uid_map', '/proc/self/gid_map'], 120);
    if (r.exitCode !== 0) throw new Error(`exec in app${i}: ${r.stderr.trim()}`);
    maps.push(r.stdout.trim().replace(/\s+/g, ' '));
  }
  const want = `0 ${KUBELET_BASE} ${SIZE} 0 ${KUBELET_BASE} ${SIZE}`;
  const doubled = allocatedIds().filter((id) => ids.includes(id));
  await cri.stopPodSandbox(pod);
  await cri.removePodSandbox(pod);
  if (maps.some((m) => m !== want)) throw new Error(`uid_map/gid_map are ${maps.join(' / ')}, not the kubelet's ${want}`);
  if (doubled.length > 0) throw new Error(`sysrunc allocated a range of its own for ${doubled.join(', ')} too`);

  // 2. A range inside sysrunc's pool: refused with one line naming the overlap.
  const pool = sysruncPool();
  const inside = pool.start + pool.size - SIZE;
  const refusedConfig = podConfig('userns-overlap', usernsAt(inside), rig.logDir);
  const refusal = await cri.runPodSandbox(refusedConfig, 'sysrunc').then(
    (id) => `RunPodSandbox ${id} succeeded`,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  const left = await cri.listContainers();
  if (!/overlap .*sysrunc's (own )?pool/.test(refusal)) throw new Error(`a kubelet range inside sysrunc's pool: ${refusal.split('\n')[0]}`);
  if (left.length > 0) throw new Error(`${left.length} containers left`);
  verdict = 'pass';
  console.log(`kubelet range ${KUBELET_BASE}+${SIZE} honoured by both apps, none allocated twice; inside the pool: ${refusal.replace(/^.*?(container [^ ]+: its uid)/, '$1').split('\n')[0]}`);
} catch (err) {
  console.log((err as Error).message.split('\n')[0]);
} finally {
  await rig.stop();
}
process.exit(verdict === 'pass' ? 0 : 1);
