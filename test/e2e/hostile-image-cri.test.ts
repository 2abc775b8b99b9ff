// Issue 17 under containerd's CRI: a container whose config's envs set every SYSRUNC_* setting to
// its most permissive value (what an image's ENV becomes) runs with the safe defaults; the
// operator's way here is an annotation that containerd passes on only because the handler's
// container_annotations allow io.sysrunc.* (config/containerd-sysrunc.toml).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { APP_IMAGE, startCriRig, type CriRig } from '../rig/cri.ts';
import { criRuntime, type ContainerConfig, type CriRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { execTool } from '../rig/exec.ts';
import { hostOwner, leftovers, NOTHING_LEFT, parseIdMap } from './helpers.ts';
import { HOSTILE_ENV, WIDENING_ENV } from './hostile-env.ts';

const RIG = 'e2e-hostile-cri';

let mgr: TestManager;
let rig: CriRig;
let cri: CriRuntime;
let work: string;
let podId: string | undefined;
let sandbox: PodSandboxConfig;

before(async () => {
  work = mkdtempSync('/var/tmp/sysrunc-e2e-hostile-cri-');
  mgr = await startTestManager({ name: RIG });
  rig = await startCriRig(RIG, { sysrunc: SYSRUNC }, mgr.env, { containerAnnotations: { sysrunc: ['io.sysrunc.*'] } });
  cri = criRuntime(rig.cri);
  sandbox = {
    metadata: { name: 'hostile', uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: path.join(rig.logDir, 'hostile'),
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  podId = await cri.runPodSandbox(sandbox, 'sysrunc');
});

after(async () => {
  try {
    if (podId !== undefined) {
      await cri.stopPodSandbox(podId);
      await cri.removePodSandbox(podId);
    }
  } finally {
    await rig?.stop();
    await mgr?.dispose();
    rmSync(work, { recursive: true, force: true });
  }
});

let attempt = 0;

/**
 * Runs `script` in a new app container of the pod, `vol` bound at /data, then stops and removes the
 * container (ownership a host-root bind had while it ran is undone by then); returns its stdout.
 */
async function runApp(script: string, vol: string, extra: Partial<ContainerConfig> = {}): Promise<string> {
  assert.ok(podId !== undefined, 'no pod');
  const name = `app${attempt++}`;
  const id = await cri.createContainer(
    podId,
    { metadata: { name, attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: `${name}.log`, mounts: [{ container_path: '/data', host_path: vol }], ...extra },
    sandbox,
  );
  await cri.startContainer(id);
  try {
    const r = await cri.execSync(id, ['sh', '-c', script]);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout;
  } finally {
    await cri.stopAndRemoveContainer(id);
  }
}

const HOSTILE: Partial<ContainerConfig> = { envs: Object.entries(HOSTILE_ENV).map(([key, value]) => ({ key, value: Buffer.from(value) })) };

async function writableDir(name: string): Promise<string> {
  const dir = path.join(work, name);
  await execTool('mkdir', ['-m', '0777', dir], process.env);
  return dir;
}

// An app container shares the pod's user namespace and range (the sandbox's, which has no envs), so
// what its envs could change per container is what is checked: the system-container rewrites
// (syscont, capabilities) and the ownership of its host-path mounts.
test('a CRI container whose envs set every SYSRUNC_ setting is still a system container: its root has CAP_SYS_ADMIN', async () => {
  const out = await runApp("env | grep -c ^SYSRUNC_; awk '/^CapEff/ { print $2 }' /proc/self/status", await writableDir('caps'), HOSTILE);
  const [count, capEff = ''] = out.trim().split('\n');
  assert.equal(Number(count), Object.keys(HOSTILE_ENV).length, 'the variables are in its environment');
  const CAP_SYS_ADMIN = 21n;
  assert.equal((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n, 1n, `CapEff ${capEff}`);
});

test('what its root writes through a CRI host-path mount is owned on the host by its own range, and is not setuid-root', async () => {
  const vol = await writableDir('written');
  const out = await runApp('cp /bin/busybox /data/x && chmod 4755 /data/x && cat /proc/self/uid_map', vol, HOSTILE);
  const base = parseIdMap(out)[0]?.hostID ?? 0;
  assert.ok(base > 0, out);
  assert.deepEqual(hostOwner(path.join(vol, 'x')), { uid: base, gid: base });
  assert.equal(statSync(path.join(vol, 'x')).mode & 0o4000, 0o4000);
});

test("the manager's log warns of each SYSRUNC_ variable of a CRI container it ignored", () => {
  const log = mgr.log();
  for (const name of WIDENING_ENV) assert.match(log, new RegExp(`"level":40[^\\n]*ignored setting: environment variable ${name}: [^\\n]*ignored`), name);
});

test('the io.sysrunc.bind-ownership=host-root annotation the handler lets through maps host root to container root in host-path mounts', async () => {
  const vol = await writableDir('annotated');
  await runApp('echo x > /data/by-root', vol, { annotations: { 'io.sysrunc.bind-ownership': 'host-root' } });
  assert.deepEqual(hostOwner(path.join(vol, 'by-root')), { uid: 0, gid: 0 });
});

test('nothing is left once the pod is gone', async () => {
  assert.ok(podId !== undefined, 'no pod');
  await cri.stopPodSandbox(podId);
  await cri.removePodSandbox(podId);
  podId = undefined;
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
