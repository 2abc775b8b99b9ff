// Issue 9: Kubernetes pods through containerd's CRI plugin with sysrunc as a runtime handler,
// driven through the real CRI gRPC API: the pod's app containers share one user namespace (the
// sandbox's), mapped to a non-zero host range; stopping and removing the pod leaves nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { APP_IMAGE, DIND_IMAGE, SYSTEMD_IMAGE, startCriRig, type CriRig } from '../rig/cri.ts';
import { criRuntime, type CriRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { leftovers, managerList, NOTHING_LEFT, parseIdMap, subidAllocations } from './helpers.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import type { Spec } from '../../src/oci/spec.ts';

let mgr: TestManager;
let rig: CriRig;
let cri: CriRuntime;

before(async () => {
  mgr = await startTestManager({ name: 'e2e-cri' });
  rig = await startCriRig('e2e-cri', { sysrunc: process.env.DBG_SYSRUNC ?? SYSRUNC }, mgr.env);
  cri = criRuntime(rig.cri);
});
after(async () => {
  await rig?.stop();
  await mgr?.dispose();
});

interface Pod {
  readonly id: string;
  readonly config: PodSandboxConfig;
  readonly containers: string[];
}

/** Every sandbox made, so the last test can remove those a failed step left. */
const sandboxes: string[] = [];

async function runPod(handler: string, name: string, apps: number | readonly string[]): Promise<Pod> {
  const images = typeof apps === 'number' ? Array.from({ length: apps }, () => APP_IMAGE) : apps;
  const config: PodSandboxConfig = {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: path.join(rig.logDir, name),
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  const id = await cri.runPodSandbox(config, handler);
  sandboxes.push(id);
  const containers: string[] = [];
  for (const [i, image] of images.entries()) {
    // The busybox image sleeps; the Debian ones run their own entrypoint (dockerd, systemd). systemd
    // must be PID 1: a pid namespace of its own, not the pod's.
    const command = image === APP_IMAGE ? { command: ['sleep', '100000'] } : {};
    const linux = image === SYSTEMD_IMAGE ? { linux: { security_context: { namespace_options: { pid: 1 } } } } : {};
    const created = await cri.createContainer(id, { metadata: { name: `app${i}`, attempt: 0 }, image: { image }, ...command, ...linux, log_path: `app${i}.log` }, config);
    containers.push(created);
    await cri.startContainer(created);
  }
  return { id, config, containers };
}

async function execSync(container: string, cmd: string[]): Promise<string> {
  const r = await cri.execSync(container, cmd);
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim();
}

/** Mount points of a mountinfo file with their file system type and device (major:minor). */
function mountinfoLines(file: string): { point: string; fstype: string; device: string }[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => {
    const fields = line.split(' ');
    const rest = line.slice(line.indexOf(' - ') + 3).split(' ');
    return { point: fields[4] ?? '', device: fields[2] ?? '', fstype: rest[0] ?? '' };
  });
}

async function removePod(pod: Pod): Promise<void> {
  await cri.stopPodSandbox(pod.id);
  await cri.removePodSandbox(pod.id);
}

test('a pod of two app containers runs under handler runc (the control)', async () => {
  const pod = await runPod('runc', 'control', 2);
  try {
    for (const c of pod.containers) assert.equal(await execSync(c, ['echo', 'up']), 'up');
    assert.deepEqual((await cri.listContainers(pod.id)).map((c) => c.id).sort(), [...pod.containers].sort());
  } finally {
    await removePod(pod);
  }
});

// The sandbox's /dev/shm is a bind of a tmpfs containerd mounts on the host (mountinfo:
// "rw,nosuid,nodev,noexec"), with options ["rbind", "ro"]. runc 1.1 remounts it read-only with
// exactly the listed flags (MS_BIND|MS_REC|MS_REMOUNT|MS_RDONLY = 0x5021); in the container's
// user namespace the source's nosuid/nodev/noexec are locked, so clearing them was EPERM until
// sysrunc began listing them (gather-facts.ts lockedBindFlags).
let sandbox: Pod | undefined;

test('under handler sysrunc, a pod sandbox with no app container is ready', async () => {
  sandbox = await runPod('sysrunc', 'sysrunc-sandbox', 0);
  assert.equal((await cri.podSandboxStatus(sandbox.id)).state, 0, 'SANDBOX_READY');
});

test('the sysrunc pod sandbox\'s /dev/shm is the tmpfs containerd mounted for the pod', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  const { pid } = await cri.podSandboxInfo(sandbox.id);
  // The last one: the spec's default /dev/shm tmpfs comes first and the pod's bind is stacked on it.
  const inside = mountinfoLines(`/proc/${pid}/mountinfo`).filter((m) => m.point === '/dev/shm').at(-1);
  const host = mountinfoLines('/proc/self/mountinfo').find((m) => m.point.endsWith(`/sandboxes/${sandbox?.id ?? ''}/shm`));
  assert.ok(host !== undefined, 'containerd mounted no shm for the pod');
  assert.ok(inside !== undefined, 'the sandbox has no /dev/shm mount');
  assert.deepEqual([inside.fstype, inside.device], ['tmpfs', host.device], 'the sandbox\'s /dev/shm is another file system than the pod\'s');
});

// A pod's sandbox keeps the engine's rootfs (spec-transform/pod-sandbox.ts): no overlay swap. The
// rig's pause image is one static binary run as user 65535, with no mount point of its own.
test('the sysrunc pod sandbox\'s root is containerd\'s overlay, not one of sysrunc\'s over idmapped layers', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  const { pid } = await cri.podSandboxInfo(sandbox.id);
  const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/');
  assert.ok(root !== undefined, 'the sandbox has no root mount');
  const [fstype, , superOptions = ''] = root.slice(root.indexOf(' - ') + 3).split(' ');
  assert.equal(fstype, 'overlay');
  assert.match(superOptions, /upperdir=[^,]*io\.containerd\.snapshotter\.v1\.overlayfs\/snapshots\//, 'the upper dir is not containerd\'s snapshot');
  assert.doesNotMatch(superOptions, new RegExp(mgr.runDir), 'the overlay is sysrunc\'s');
});

test('the sysrunc pod sandbox\'s process runs as the pause image\'s user 65535 of the pod\'s user namespace', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  const { pid } = await cri.podSandboxInfo(sandbox.id);
  const map = parseIdMap(readFileSync(`/proc/${pid}/uid_map`, 'utf8'))[0];
  assert.ok(map !== undefined && map.containerID === 0 && map.hostID !== 0, 'the sandbox has no user namespace of its own');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  assert.equal(uid, map.hostID + 65535);
});

test('the sysrunc pod sandbox runs in the network namespace CNI set up, not the host\'s', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  const { pid, netnsPath } = await cri.podSandboxInfo(sandbox.id);
  assert.notEqual(statSync(`/proc/${pid}/ns/net`).ino, statSync('/proc/self/ns/net').ino, 'the sandbox runs in the host\'s network namespace');
  assert.equal(statSync(`/proc/${pid}/ns/net`).ino, statSync(netnsPath).ino, `the sandbox is not in ${netnsPath}`);
  assert.match((await cri.podSandboxStatus(sandbox.id)).ip, /^10\.231\.77\./, 'CNI gave the pod no address');
});

test('the sysrunc pod sandbox\'s network hook is the C one, dist/sysrunc-adopt-netns, where the build made it', () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  const config = JSON.parse(readFileSync(path.join(mgr.runDir, 'bundles', sandbox.id, 'config.json'), 'utf8')) as Spec;
  const hooks = (config.hooks?.createRuntime ?? []).filter((h) => h.args?.[0] === 'sysrunc-adopt-netns');
  assert.deepEqual(hooks.map((h) => h.path), [path.join(REPO_ROOT, 'dist', 'sysrunc-adopt-netns')]);
});

test('while the sysrunc pod sandbox runs, the manager holds its record and a range for it', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  assert.ok((await managerList(mgr)).some((r) => r.id === sandbox?.id), 'the manager has no record of the sandbox');
  assert.deepEqual(subidAllocations(mgr).map((a) => a.id), [sandbox.id]);
});

test('a sysrunc pod sandbox leaves no allocation, mount or record behind once stopped and removed', async () => {
  assert.ok(sandbox !== undefined, 'no sandbox');
  await removePod(sandbox);
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
  assert.deepEqual(subidAllocations(mgr), []);
});

let pod: Pod | undefined;

test('under handler sysrunc, a pod sandbox and two app containers run, one of them Docker in Docker', async () => {
  pod = await runPod('sysrunc', 'sysrunc-pod', [APP_IMAGE, DIND_IMAGE]);
  for (const c of pod.containers) assert.equal(await execSync(c, ['echo', 'up']), 'up');
});

test('the pod\'s app containers share one user namespace, mapped to a non-zero host range', async () => {
  assert.ok(pod !== undefined, 'no pod');
  const [a, b] = pod.containers as [string, string];
  assert.equal(await execSync(a, ['readlink', '/proc/self/ns/user']), await execSync(b, ['readlink', '/proc/self/ns/user']));
  const map = parseIdMap(await execSync(a, ['cat', '/proc/self/uid_map']));
  assert.equal(map[0]?.containerID, 0);
  assert.notEqual(map[0]?.hostID, 0);
});

test('the pod\'s app containers see their image\'s files root-owned', async () => {
  assert.ok(pod !== undefined, 'no pod');
  for (const c of pod.containers) assert.equal(await execSync(c, ['stat', '-c', '%u:%g', '/bin/busybox', '/etc']), '0:0\n0:0');
});

test('the pod\'s app containers have the pod\'s IP, in a network namespace their root administers', async () => {
  assert.ok(pod !== undefined, 'no pod');
  const { ip } = await cri.podSandboxStatus(pod.id);
  assert.match(ip, /^10\.231\.77\./);
  for (const c of pod.containers) assert.match(await execSync(c, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']), new RegExp(` inet ${ip.replaceAll('.', '\\.')}/24 `));
  const [a, b] = pod.containers as [string, string];
  // Made in one container, seen in the other: one network namespace; and root inside may change it.
  await execSync(a, ['ip', 'link', 'add', 'srt-a', 'type', 'veth', 'peer', 'name', 'srt-b']);
  await execSync(a, ['ip', 'link', 'set', 'srt-a', 'up']);
  assert.match(await execSync(b, ['ip', '-o', 'link', 'show', 'srt-a']), /srt-a@\S+: <[^>]*\bUP\b/);
});

test('the pod\'s Docker-in-Docker container runs an inner container', async () => {
  assert.ok(pod !== undefined, 'no pod');
  const dind = pod.containers[1] as string;
  let driver = '';
  for (let i = 0; i < 60 && driver === ''; i++) {
    const info = await cri.execSync(dind, ['docker', 'info', '--format', '{{.Driver}}']);
    if (info.exitCode === 0) driver = info.stdout.trim();
    else await new Promise((r) => setTimeout(r, 1000));
  }
  assert.equal(driver, 'overlay2');
  await execSync(dind, ['sh', '-c', 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/sh && ln -s busybox /tmp/bb/bin/echo && tar -C /tmp/bb -c . | docker import - inner:bb']);
  const r = await cri.execSync(dind, ['docker', 'run', '--rm', 'inner:bb', 'echo', 'hello from the inner container'], 60);
  assert.equal(r.stdout.trim(), 'hello from the inner container', r.stderr);
});

test('the sysrunc pod, stopped and removed, leaves no allocation, mount or record', async () => {
  assert.ok(pod !== undefined, 'no pod');
  await removePod(pod);
  // The Docker-in-Docker container's store volumes go with its rootfs snapshot, which containerd
  // removes in its garbage collection, shortly after RemovePodSandbox returns: leftovers waits
  // (bounded) for the manager's periodic sweep to see that.
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});

test('a systemd app container in a sysrunc pod boots to running, with no failed unit', async () => {
  const pod = await runPod('sysrunc', 'sysrunc-systemd', [SYSTEMD_IMAGE]);
  try {
    const init = pod.containers[0] as string;
    let state = '';
    for (let i = 0; i < 60 && !['running', 'degraded'].includes(state); i++) {
      state = (await cri.execSync(init, ['systemctl', 'is-system-running'])).stdout.trim();
      if (!['running', 'degraded'].includes(state)) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const failed = (await cri.execSync(init, ['systemctl', '--failed', '--no-legend', '--plain'])).stdout;
    assert.equal(state, 'running', `failed units:\n${failed}`);
    assert.equal(await execSync(init, ['readlink', '/proc/1/exe']), '/usr/lib/systemd/systemd');
  } finally {
    await removePod(pod);
  }
});

test('two sysrunc pods get disjoint ranges', async () => {
  const first = await runPod('sysrunc', 'sysrunc-pod-a', 0);
  const second = await runPod('sysrunc', 'sysrunc-pod-b', 0);
  try {
    const ranges = (await managerList(mgr)).filter((r) => r.id === first.id || r.id === second.id).map((r) => r.uidMappings[0]);
    assert.equal(ranges.length, 2);
    const [x, y] = ranges;
    assert.ok(x !== undefined && y !== undefined);
    assert.ok(x.hostID + x.size <= y.hostID || y.hostID + y.size <= x.hostID, `${JSON.stringify(x)} overlaps ${JSON.stringify(y)}`);
  } finally {
    await removePod(first);
    await removePod(second);
  }
});

test('all pods stopped and removed: no allocation, mount or record is left', async () => {
  for (const id of sandboxes) {
    await cri.stopPodSandbox(id).catch(() => undefined);
    await cri.removePodSandbox(id).catch(() => undefined);
  }
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
