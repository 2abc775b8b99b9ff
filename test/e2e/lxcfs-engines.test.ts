// Issue 21 beyond Docker: a CRI pod with limits, a tenant container (--memory/--cpu) and a depot
// container see their own /proc figures through sysrunc's lxcfs. One private manager (with lxcfs),
// one private containerd (its CRI plugin, and the tenant service on its gRPC API), one depot daemon.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { MOUNT_NS_LOCK_FILE } from '../../src/host/mount-ns-lock.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { sweepManager } from '../helpers/manager-state.ts';
import { APP_IMAGE, startCriRig, type CriRig } from '../rig/cri.ts';
import { criRuntime, type CriRuntime, type PodSandboxConfig } from '../rig/cri-api.ts';
import { ensureBusyboxRootfs } from '../rig/images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { TenantsClient } from '../../src/tenants-api/client.ts';
import { DepotClient } from '../../src/depot-api/client.ts';
import { removeEmptyDir } from './helpers.ts';

// Fixed names: the CRI rig's data root (its imported images) is reused by the next run.
const NAME = 'e2e-lxcfs-eng';
const BASE = `/run/sysrunc-test/${NAME}-x`;
const WORK = `/var/tmp/${NAME}`;
const CGROUP_PARENT = NAME;
const TENANT_SOCKET = path.join(BASE, 'tenantd.sock');
const DEPOT_SOCKET = path.join(BASE, 'depotd.sock');
const CTL = path.join(REPO_ROOT, 'bin', 'sysrunc-ctl');
const MIB = 1024 * 1024;

let mgr: TestManager;
let rig: CriRig;
let cri: CriRuntime;
const daemons: ChildProcess[] = [];

/** One line per figure: MemTotal in kB, nproc, processors in /proc/cpuinfo, uptime in seconds. */
const FIGURES = "awk '/^MemTotal:/ {print $2}' /proc/meminfo; nproc; grep -c ^processor /proc/cpuinfo; cut -d' ' -f1 /proc/uptime";

function parseFigures(out: string): { memKiB: number; nproc: number; processors: number; uptime: number } {
  const [memKiB, nproc, processors, uptime] = out.trim().split('\n').map(Number);
  return { memKiB: memKiB ?? NaN, nproc: nproc ?? NaN, processors: processors ?? NaN, uptime: uptime ?? NaN };
}

async function startDaemon(bin: string, args: readonly string[], log: string): Promise<void> {
  const fd = openSync(path.join(WORK, log), 'a');
  daemons.push(spawn(path.join(REPO_ROOT, 'bin', bin), args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...mgr.env } }));
  closeSync(fd);
}

async function rootfsCopy(name: string): Promise<string> {
  const dest = path.join(WORK, 'rootfs', name);
  cpSync(await ensureBusyboxRootfs(), dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}

before(async () => {
  mkdirSync(BASE, { recursive: true });
  mkdirSync(WORK, { recursive: true });
  mgr = await startTestManager({ name: NAME, lxcfs: true });
  rig = await startCriRig(NAME, { sysrunc: SYSRUNC }, mgr.env);
  cri = criRuntime(rig.cri);
  await startDaemon('sysrunc-tenantd', ['--socket', TENANT_SOCKET, '--containerd', rig.containerd.address, '--state-dir', path.join(WORK, 'tenants'), '--runc-root', path.join(BASE, 'tenant-runc'), '--sysrunc', SYSRUNC, '--cgroup-parent', CGROUP_PARENT], 'tenantd.log');
  await startDaemon('sysrunc-depotd', ['--socket', DEPOT_SOCKET, '--depot', path.join(BASE, 'depot'), '--runc-root', path.join(BASE, 'depot-runc')], 'depotd.log');
  (await TenantsClient.connect(TENANT_SOCKET, 20_000)).close();
  (await DepotClient.connect(DEPOT_SOCKET, 20_000)).close();
});

after(async () => {
  spawnSync(CTL, ['depot', 'destroy', 'lxe-depot', '--socket', DEPOT_SOCKET]);
  spawnSync(CTL, ['tenant', 'delete', 'lxe', 'web', '--socket', TENANT_SOCKET]);
  for (const d of daemons) d.kill('SIGKILL');
  await rig?.stop();
  await sweepManager(mgr.socket).catch(() => undefined);
  const runDir = mgr?.runDir;
  await mgr?.dispose();
  if (runDir !== undefined) {
    for (const sub of ['hints', 'bundles', 'containers']) removeEmptyDir(path.join(runDir, sub));
    rmSync(path.join(runDir, MOUNT_NS_LOCK_FILE), { force: true });
    removeEmptyDir(runDir);
  }
  // The tenant's parent cgroups (runc removes only the container's own); empty ones only.
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const top = path.join('/sys/fs/cgroup', controller, CGROUP_PARENT);
    if (!existsSync(top)) continue;
    for (const ns of readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory())) removeEmptyDir(path.join(top, ns.name));
    removeEmptyDir(top);
  }
  rmSync(WORK, { recursive: true, force: true });
  rmSync(BASE, { recursive: true, force: true });
});

// Its own pid namespace, as kubelet asks by default (shareProcessNamespace: false): lxcfs finds a
// reader's cgroup through the init of its pid namespace; in a shared one that is the sandbox's.
test('a CRI pod container with a 256 MiB memory limit and a 1-CPU quota sees 256 MiB, 1 CPU and its own uptime', async () => {
  const started = Date.now();
  const config: PodSandboxConfig = { metadata: { name: 'lxcfs-pod', uid: randomUUID(), namespace: 'default', attempt: 0 }, log_directory: path.join(rig.logDir, 'lxcfs-pod'), linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } } };
  const pod = await cri.runPodSandbox(config, 'sysrunc');
  try {
    const resources = { memory_limit_in_bytes: 256 * MIB, cpu_quota: 100000, cpu_period: 100000 };
    const app = await cri.createContainer(pod, { metadata: { name: 'app', attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], linux: { resources, security_context: { namespace_options: { pid: 1 } } }, log_path: 'app.log' }, config);
    await cri.startContainer(app);
    const r = await cri.execSync(app, ['sh', '-c', FIGURES]);
    assert.equal(r.exitCode, 0, r.stderr);
    const f = parseFigures(r.stdout);
    assert.deepEqual([f.memKiB, f.nproc, f.processors], [256 * 1024, 1, 1]);
    assert.ok(f.uptime <= (Date.now() - started) / 1000 + 1, `uptime ${f.uptime}`);
  } finally {
    await cri.stopPodSandbox(pod);
    await cri.removePodSandbox(pod);
  }
});

test('a tenant container run with --memory 256 MiB and --cpu 1 sees 256 MiB and 1 CPU', async () => {
  const c = await TenantsClient.connect(TENANT_SOCKET, 20_000);
  try {
    await c.call('createNS', { ns: 'lxe' });
    await c.call('run', { ns: 'lxe', container: { name: 'web', rootfs: await rootfsCopy('web'), entrypoint: ['sleep', '100000'], cpu: 1, memory: 256 * MIB, shutdownTimeout: 1 } });
    const r = await c.call('exec', { ns: 'lxe', id: 'web', args: ['sh', '-c', FIGURES] });
    assert.equal(r.exitCode, 0, r.stderr);
    const f = parseFigures(r.stdout);
    assert.deepEqual([f.memKiB, f.nproc, f.processors], [256 * 1024, 1, 1]);
  } finally {
    c.close();
  }
});

test('a depot container created with --memory 256 MiB and --cpu 1 sees 256 MiB, 1 CPU and its own uptime, from lxcfs', async () => {
  const env = { ...process.env, SYSRUNC_DEPOT_SOCKET: DEPOT_SOCKET };
  const started = Date.now();
  const created = spawnSync(CTL, ['depot', 'create', 'lxe-depot', '--rootfs', await rootfsCopy('depot'), '--memory', String(256 * MIB), '--cpu', '1'], { encoding: 'utf8', env });
  assert.equal(created.status, 0, created.stderr);
  const r = spawnSync(CTL, ['depot', 'exec', 'lxe-depot', 'sh', '-c', `${FIGURES}; grep -c ' /proc/meminfo .* fuse.lxcfs ' /proc/self/mountinfo`], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.at(-1), '1', r.stdout);
  const f = parseFigures(lines.slice(0, 4).join('\n'));
  assert.deepEqual([f.memKiB, f.nproc, f.processors], [256 * 1024, 1, 1]);
  assert.ok(f.uptime <= (Date.now() - started) / 1000 + 1, `uptime ${f.uptime}`);
});

test('sysrunc-ctl create refuses --memory under 4 MiB with one line naming it, and leaves no container', async () => {
  const env = { ...process.env, SYSRUNC_DEPOT_SOCKET: DEPOT_SOCKET };
  const r = spawnSync(CTL, ['depot', 'create', 'lxe-small', '--rootfs', await rootfsCopy('small'), '--memory', '1000'], { encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.trim(), /memory/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(existsSync(path.join(BASE, 'depot', 'lxe-small')), false);
});
