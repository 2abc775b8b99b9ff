// Issue 19: a Kubernetes pod under sysrunc keeps what its spec asks, through the real CRI gRPC API
// of a private containerd, with handler `runc` (the control) and handler `sysrunc` side by side.
// Where sysrunc differs from runc on purpose, the test's name says so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { APP_IMAGE, startCriRig, type CriRig } from '../rig/cri.ts';
import { criRuntime, type ContainerConfig, type CriRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { portForward } from '../rig/cri-port-forward.ts';
import { leftovers, NOTHING_LEFT } from './helpers.ts';
import { CONFIG_TEXT, ensureKubeletPodsDir, makePodVolumes, SECRET_TEXT, TOKEN_TEXT, type PodVolumes } from './kubelet-volumes.ts';

const HANDLERS = ['runc', 'sysrunc'] as const;
const SERVED_PORT = 8080;
const FORWARDED_TEXT = 'bytes-through-port-forward';
type Handler = (typeof HANDLERS)[number];

let mgr: TestManager;
let rig: CriRig;
let cri: CriRuntime;
/** A shared tmpfs (kubelet's condition for Bidirectional propagation), the pods' propagation volume. */
let propagationDir: string;
const volumes = new Map<Handler, PodVolumes>();
let removeKubeletPodsDir: (() => void) | undefined;
/** The network namespace file containerd pinned for the sysrunc pod (/run/netns/cni-...). */
let sysruncPinnedFile: string | undefined;
/** The CNI bridge of test/rig/cri.ts. */
const BRIDGE = 'srt-cri0';
/** Per handler: the pod's id and its containers by name. */
const pods = new Map<Handler, { id: string; containers: Map<string, string> }>();

/** A busybox container with a pid namespace of its own: its process 1 is its own init, not the sandbox's. */
function app(name: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: `${name}.log`, linux: { security_context: { namespace_options: { pid: 1 } } }, ...extra };
}

const caps = (add: string[], drop: string[]): Partial<ContainerConfig> => ({
  linux: { security_context: { namespace_options: { pid: 1 }, capabilities: { add_capabilities: add, drop_capabilities: drop } } },
});

function containersFor(v: PodVolumes): ContainerConfig[] {
  return [
    app('default'),
    app('drop-all', caps([], ['ALL'])),
    app('drop-net-raw', caps([], ['NET_RAW'])),
    app('add-net-admin', caps(['NET_ADMIN'], [])),
    app('volumes', {
      mounts: [
        { container_path: '/cache', host_path: v.emptyDir },
        { container_path: '/config', host_path: v.configMap, readonly: true },
        { container_path: '/secret', host_path: v.secret, readonly: true },
        { container_path: '/var/run/secrets/token', host_path: v.projected, readonly: true },
        { container_path: '/host', host_path: v.hostPathPrivate },
        { container_path: '/host-link', host_path: v.hostPathSymlink },
      ],
    }),
    app('server', { command: ['sh', '-c', `mkdir -p /tmp/www && echo ${FORWARDED_TEXT} > /tmp/www/hello && exec httpd -f -p ${SERVED_PORT} -h /tmp/www`] }),
    app('bidirectional', { mounts: [{ container_path: '/prop', host_path: propagationDir, propagation: 2 }] }),
    app('host-to-container', { mounts: [{ container_path: '/prop', host_path: propagationDir, propagation: 1 }] }),
  ];
}

before(async () => {
  mgr = await startTestManager({ name: 'e2e-cri-spec' });
  rig = await startCriRig('e2e-cri-spec', { sysrunc: SYSRUNC }, mgr.env);
  cri = criRuntime(rig.cri);
  removeKubeletPodsDir = ensureKubeletPodsDir();
  propagationDir = mkdtempSync('/var/tmp/sysrunc-e2e-propagation-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', propagationDir]);
  execFileSync('mount', ['--make-shared', propagationDir]);
  for (const handler of HANDLERS) {
    const config: PodSandboxConfig = {
      metadata: { name: `spec-${handler}`, uid: randomUUID(), namespace: 'default', attempt: 0 },
      log_directory: path.join(rig.logDir, `spec-${handler}`),
      linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
    };
    const v = makePodVolumes(config.metadata.uid, mkdtempSync(`/var/tmp/sysrunc-e2e-hostpath-${handler}-`));
    volumes.set(handler, v);
    const id = await cri.runPodSandbox(config, handler);
    const containers = new Map<string, string>();
    pods.set(handler, { id, containers });
    for (const c of containersFor(v)) {
      const created = await cri.createContainer(id, c, config);
      await cri.startContainer(created);
      containers.set(c.metadata.name, created);
    }
  }
});

after(async () => {
  for (const { id } of pods.values()) {
    await cri.stopPodSandbox(id).catch(() => undefined);
    await cri.removePodSandbox(id).catch(() => undefined);
  }
  await rig?.stop();
  await mgr?.dispose();
  for (const v of volumes.values()) v.remove();
  removeKubeletPodsDir?.();
  if (propagationDir !== undefined) {
    spawnSync('umount', ['-R', propagationDir]);
    rmSync(propagationDir, { recursive: true, force: true });
  }
});

function container(handler: Handler, name: string): string {
  const id = pods.get(handler)?.containers.get(name);
  assert.ok(id !== undefined, `no ${name} container under ${handler}`);
  return id;
}

async function run(handler: Handler, name: string, cmd: string[]): Promise<{ out: string; err: string; code: number }> {
  const r = await cri.execSync(container(handler, name), cmd);
  return { out: r.stdout.trim(), err: r.stderr.trim(), code: r.exitCode };
}

async function ok(handler: Handler, name: string, cmd: string[]): Promise<string> {
  const r = await run(handler, name, cmd);
  assert.equal(r.code, 0, `${handler} ${name} ${cmd.join(' ')}: ${r.err}`);
  return r.out;
}

/** A capability set of /proc/<pid>/status as a bit mask. */
async function capMask(handler: Handler, name: string, pid: string, set: 'CapEff' | 'CapBnd'): Promise<bigint> {
  const line = await ok(handler, name, ['grep', `^${set}:`, `/proc/${pid}/status`]);
  return BigInt(`0x${line.split(/\s+/)[1]}`);
}

const CAP_NET_ADMIN = 1n << 12n;
const CAP_NET_RAW = 1n << 13n;
const CAP_SYS_ADMIN = 1n << 21n;

test('a container with the default capabilities gets the system container\'s grant under sysrunc (CAP_SYS_ADMIN), not under runc', async () => {
  assert.equal((await capMask('sysrunc', 'default', '1', 'CapEff')) & CAP_SYS_ADMIN, CAP_SYS_ADMIN);
  assert.equal((await capMask('runc', 'default', '1', 'CapEff')) & CAP_SYS_ADMIN, 0n);
});

test('a container that drops ALL has no capability at all, under sysrunc as under runc', async () => {
  for (const handler of HANDLERS) {
    assert.equal(await capMask(handler, 'drop-all', '1', 'CapEff'), 0n, handler);
    assert.equal(await capMask(handler, 'drop-all', '1', 'CapBnd'), 0n, handler);
  }
});

test('a container that drops NET_RAW has exactly the capabilities it has under runc, without NET_RAW', async () => {
  for (const set of ['CapEff', 'CapBnd'] as const) {
    const [plain, sys] = [await capMask('runc', 'drop-net-raw', '1', set), await capMask('sysrunc', 'drop-net-raw', '1', set)];
    assert.equal(sys, plain, set);
    assert.equal(sys & CAP_NET_RAW, 0n, set);
  }
});

test('a process exec\'d into a container that dropped capabilities does not get them back', async () => {
  for (const name of ['drop-all', 'drop-net-raw']) {
    for (const set of ['CapEff', 'CapBnd'] as const) {
      assert.equal(await capMask('sysrunc', name, 'self', set), await capMask('runc', name, 'self', set), `${name} ${set}`);
    }
  }
});

test('a container that adds NET_ADMIN has it under both; under sysrunc it also keeps the system container\'s grant', async () => {
  for (const handler of HANDLERS) assert.equal((await capMask(handler, 'add-net-admin', '1', 'CapEff')) & CAP_NET_ADMIN, CAP_NET_ADMIN, handler);
  assert.equal((await capMask('sysrunc', 'add-net-admin', '1', 'CapEff')) & CAP_SYS_ADMIN, CAP_SYS_ADMIN);
});

test('under sysrunc (on purpose, unlike runc), a privileged:false container with default capabilities creates a bridge in the pod\'s network namespace', async () => {
  assert.equal((await run('sysrunc', 'default', ['ip', 'link', 'add', 'srt-br0', 'type', 'bridge'])).code, 0);
  await ok('sysrunc', 'default', ['ip', 'link', 'del', 'srt-br0']);
  assert.notEqual((await run('runc', 'default', ['ip', 'link', 'add', 'srt-br0', 'type', 'bridge'])).code, 0);
});

test('a container that drops ALL cannot create a bridge, under sysrunc as under runc', async () => {
  for (const handler of HANDLERS) assert.notEqual((await run(handler, 'drop-all', ['ip', 'link', 'add', 'srt-br1', 'type', 'bridge'])).code, 0, handler);
});

test('pods with Bidirectional and HostToContainer volumes (rootfsPropagation rshared, rslave) run under sysrunc as under runc', async () => {
  for (const handler of HANDLERS) {
    for (const name of ['bidirectional', 'host-to-container']) assert.equal(await ok(handler, name, ['echo', 'up']), 'up', `${handler} ${name}`);
  }
});

test('a mount made on the host under a HostToContainer or Bidirectional volume appears inside, under sysrunc as under runc', async () => {
  const sub = path.join(propagationDir, 'later');
  mkdirSync(sub, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', sub]);
  for (const handler of HANDLERS) {
    for (const name of ['bidirectional', 'host-to-container']) {
      assert.match(await ok(handler, name, ['cat', '/proc/self/mountinfo']), / \/prop\/later /, `${handler} ${name}`);
    }
  }
});

test('an emptyDir volume is writable by the pod\'s root, and what it writes is root-owned inside, under sysrunc as under runc', async () => {
  for (const handler of HANDLERS) {
    await ok(handler, 'volumes', ['sh', '-c', 'echo hi > /cache/made-by-root']);
    assert.equal(await ok(handler, 'volumes', ['stat', '-c', '%u:%g', '/cache/made-by-root', '/cache']), '0:0\n0:0', handler);
  }
});

test('configMap, secret (mode 0400) and projected (mode 0600) volumes are readable by the pod\'s root and root-owned inside, under sysrunc as under runc', async () => {
  for (const handler of HANDLERS) {
    assert.equal(await ok(handler, 'volumes', ['cat', '/config/app.conf']), CONFIG_TEXT, handler);
    assert.equal(await ok(handler, 'volumes', ['cat', '/secret/password']), SECRET_TEXT, handler);
    assert.equal(await ok(handler, 'volumes', ['cat', '/var/run/secrets/token/token']), TOKEN_TEXT, handler);
    assert.equal(await ok(handler, 'volumes', ['stat', '-L', '-c', '%u:%g', '/config/app.conf', '/secret/password']), '0:0\n0:0', handler);
  }
});

test('under sysrunc (on purpose, unlike runc), a hostPath owned by host root with mode 0700 is closed to the pod\'s root, directly or through a symlink', async () => {
  for (const dir of ['/host', '/host-link']) {
    assert.equal(await ok('runc', 'volumes', ['cat', `${dir}/data`]), 'host data');
    const denied = await run('sysrunc', 'volumes', ['ls', dir]);
    assert.notEqual(denied.code, 0, dir);
    assert.match(denied.err, /Permission denied/, dir);
  }
});

test('under sysrunc, what the pod\'s root writes into its emptyDir is host root\'s on the host only inside kubelet\'s pods dir, which only host root can traverse', async () => {
  const v = volumes.get('sysrunc');
  assert.ok(v !== undefined);
  const st = spawnSync('stat', ['-c', '%u %a', path.join(v.emptyDir, 'made-by-root'), '/var/lib/kubelet/pods'], { encoding: 'utf8' }).stdout.trim().split('\n');
  assert.equal(st[0]?.split(' ')[0], '0');
  assert.match(st[1] ?? '', /^0 7[0-5]0$/);
});

test('under sysrunc (on purpose, unlike runc), a pod asking for the host\'s network namespace is refused', async () => {
  const config = (handler: string): PodSandboxConfig => ({
    metadata: { name: `host-net-${handler}`, uid: randomUUID(), namespace: 'default', attempt: 0 },
    linux: { security_context: { namespace_options: { network: 2, pid: 1, ipc: 0 } } },
  });
  const plain = await cri.runPodSandbox(config('runc'), 'runc');
  await cri.stopPodSandbox(plain);
  await cri.removePodSandbox(plain);
  await assert.rejects(cri.runPodSandbox(config('sysrunc'), 'sysrunc'), /namespace is the host's/);
});

test('port-forward through CRI\'s PortForward reaches a pod\'s server, under sysrunc as under runc', async () => {
  for (const [handler, pod] of pods) {
    const { url } = (await rig.cri.runtime('PortForward', { pod_sandbox_id: pod.id, port: [SERVED_PORT] })) as { url: string };
    const answer = await portForward(url, SERVED_PORT, Buffer.from('GET /hello HTTP/1.0\r\n\r\n'));
    assert.match(answer.data.toString(), new RegExp(`^HTTP/1\\.[01] 200 [^]*\\r\\n\\r\\n${FORWARDED_TEXT}\n$`), `${handler}: ${answer.error}`);
  }
});

test('under sysrunc, the network namespace file containerd pinned for the pod is the pod\'s own', async () => {
  const pinned = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / \/run\/netns\/cni-/.test(l) || / \/var\/run\/netns\/cni-/.test(l));
  assert.ok(pinned.length > 0, 'no pinned network namespace');
  const inode = (await ok('sysrunc', 'default', ['readlink', '/proc/self/ns/net'])).replace(/^net:\[(\d+)\]$/, '$1');
  const mine = pinned.find((l) => l.split(' ')[3] === `net:[${inode}]`);
  assert.ok(mine !== undefined, `net:[${inode}] is not among\n${pinned.join('\n')}`);
  sysruncPinnedFile = mine.split(' ')[4];
});

test('the pods, stopped and removed, leave no allocation, mount or record', async () => {
  for (const [handler, { id }] of pods) {
    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
    pods.delete(handler);
  }
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});

test('at teardown, containerd unmounts and removes the pinned file that the sysrunc pod\'s namespace replaced, and the pod\'s interface is gone', () => {
  assert.ok(sysruncPinnedFile !== undefined, 'the pinned file was not found');
  assert.equal(existsSync(sysruncPinnedFile), false);
  // The bridge plugin's DEL deletes the pod's veth; its host end goes with it.
  assert.equal(execFileSync('ip', ['-o', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' }).trim(), '');
});
