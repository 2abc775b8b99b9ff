// Issue 9: Kubernetes pods through containerd's CRI plugin with sysrunc as a runtime handler,
// driven through the real CRI gRPC API: the pod's app containers share one user namespace (the
// sandbox's), mapped to a non-zero host range; stopping and removing the pod leaves nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { APP_IMAGE, startCriRig, type CriRig } from '../rig/cri.ts';
import { criRuntime, type CriRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { leftovers, managerList, NOTHING_LEFT, parseIdMap, subidAllocations } from './helpers.ts';

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

async function runPod(handler: string, name: string, apps: number): Promise<Pod> {
  const config: PodSandboxConfig = {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: path.join(rig.logDir, name),
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  const id = await cri.runPodSandbox(config, handler);
  sandboxes.push(id);
  const containers: string[] = [];
  for (let i = 0; i < apps; i++) {
    const created = await cri.createContainer(id, { metadata: { name: `app${i}`, attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: `app${i}.log` }, config);
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

// containerd 1.6's CRI makes the pod's network namespace before the sandbox, in the host's user
// namespace (CNI sets it up there). An app container joins the sandbox's namespaces, and so the
// sandbox's user namespace (issue 9); but runc joins the user namespace first, and a process in
// the sandbox's user namespace may not then setns into a network namespace the host's owns:
// "failed to setns into net namespace: Operation not permitted". Pods need their network
// namespace made inside their user namespace (Kubernetes' pod user namespaces, containerd 2.x).
const APP_CONTAINERS = 'app containers joining a CNI network namespace the host user namespace owns (runc joins the user namespace first)';

// The sandbox's /dev/shm is a bind of a tmpfs containerd mounts on the host (mountinfo:
// "rw,nosuid,nodev,noexec"), with options ["rbind", "ro"]. runc 1.1 remounts it read-only with
// exactly the listed flags (MS_BIND|MS_REC|MS_REMOUNT|MS_RDONLY = 0x5021); in the container's
// user namespace the source's nosuid/nodev/noexec are locked, so clearing them was EPERM until
// sysrunc began listing them (gather-facts.ts lockedBindFlags).
test('under handler sysrunc, the pod sandbox runs with containerd\'s shm and CNI network namespace', async () => {
  const pod = await runPod('sysrunc', 'sysrunc-sandbox', 0);
  try {
    assert.equal((await cri.podSandboxStatus(pod.id)).state, 0, 'SANDBOX_READY');
  } finally {
    await removePod(pod);
  }
});

test('a sysrunc pod sandbox leaves no allocation, mount or record behind once stopped and removed', async () => {
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
  assert.deepEqual(subidAllocations(mgr), []);
});

let pod: Pod | undefined;

test('under handler sysrunc, a pod sandbox and two app containers run', { skip: APP_CONTAINERS }, async () => {
  pod = await runPod('sysrunc', 'sysrunc-pod', 2);
  for (const c of pod.containers) assert.equal(await execSync(c, ['echo', 'up']), 'up');
});

test('the pod\'s app containers share one user namespace, mapped to a non-zero host range', { skip: APP_CONTAINERS }, async () => {
  assert.ok(pod !== undefined, 'no pod');
  const [a, b] = pod.containers as [string, string];
  assert.equal(await execSync(a, ['readlink', '/proc/self/ns/user']), await execSync(b, ['readlink', '/proc/self/ns/user']));
  const map = parseIdMap(await execSync(a, ['cat', '/proc/self/uid_map']));
  assert.equal(map[0]?.containerID, 0);
  assert.notEqual(map[0]?.hostID, 0);
});

test('the pod\'s app containers see their image\'s files root-owned', { skip: APP_CONTAINERS }, async () => {
  assert.ok(pod !== undefined, 'no pod');
  for (const c of pod.containers) assert.equal(await execSync(c, ['stat', '-c', '%u:%g', '/bin/busybox', '/etc']), '0:0\n0:0');
});

test('the sysrunc pod, stopped and removed, leaves no allocation, mount or record', { skip: APP_CONTAINERS }, async () => {
  assert.ok(pod !== undefined, 'no pod');
  await removePod(pod);
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
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
