// The tenant container service (issue 10): sysrunc-tenantd over a private containerd's gRPC API,
// every container through sysrunc (runc v2 shim BinaryName) with a private manager. Real
// containerd, runc and sysrunc. The test is the service's parent: it reaps the service it kills.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MOUNT_NS_LOCK_FILE } from '../../src/host/mount-ns-lock.ts';
import { TenantsClient } from '../../src/tenants-api/client.ts';
import { TenantError, type Container } from '../../src/tenants-api/v1.ts';
import { ContainerdClient } from '../../src/tenants/containerd-client.ts';
import { containerdId, legacyContainerdId, parseContainerdId } from '../../src/tenants/container-ids.ts';
import { LABELS } from '../../src/tenants/spec.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { startContainerd, type ContainerdDaemon } from '../rig/dockerd.ts';
import { ensureBusyboxRootfs, ensureContainerdImage } from '../rig/images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { assertRefusesNonRootPeer } from '../helpers/peer-refusal.ts';
import { pidAlive, waitUntil } from '../rig/proc.ts';
import { disjoint, leftovers, NOTHING_LEFT, parseIdMap, removeEmptyDir } from './helpers.ts';

const TAG = process.pid.toString(36);
const BASE = `/run/sysrunc-test/tnt-${TAG}`;
const SOCKET = path.join(BASE, 'tenantd.sock');
const WORK = `/var/tmp/tnt-e2e-${TAG}`;
const NETNS = `tnt-e2e-${TAG}`;
const A = 'tnt-a';
const B = 'tnt-b';
/** Tenant A's "col.c" and this tenant's "c" would both have been "tnt-a.col.c" before 0.3. */
const A_DOT = `${A}.col`;
/** A tenant whose old-style ids ("5-tnt-a.<name>") look like new ids of tenant A. */
const A_LEN = `${A.length}-${A}`;

let mgr: TestManager;
let ctrd: ContainerdDaemon;
let grpc: ContainerdClient;
let service: ChildProcess | undefined;
let image: string;

async function startService(): Promise<void> {
  const log = openSync(path.join(WORK, 'tenantd.log'), 'a');
  service = spawn(
    path.join(REPO_ROOT, 'bin', 'sysrunc-tenantd'),
    ['--socket', SOCKET, '--containerd', ctrd.address, '--state-dir', path.join(WORK, 'state'), '--runc-root', path.join(BASE, 'runc'),
      '--sysrunc', SYSRUNC, '--cgroup-parent', `tnt-e2e-${TAG}`, '--max-restarts', '2', '--restart-delay', '200', '--log-level', 'debug'],
    { stdio: ['ignore', log, log], env: { ...process.env, ...mgr.env } },
  );
  closeSync(log);
  const c = await TenantsClient.connect(SOCKET, 20_000);
  await c.call('ping', {});
  c.close();
}

async function kill9Service(): Promise<void> {
  const s = service;
  if (s === undefined || s.exitCode !== null || s.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    s.once('exit', () => resolve());
    s.kill('SIGKILL');
  });
}

async function call<T>(fn: (c: TenantsClient) => Promise<T>): Promise<T> {
  const c = await TenantsClient.connect(SOCKET, 20_000);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

async function rootfsCopy(name: string): Promise<string> {
  const dest = path.join(WORK, 'rootfs', name);
  if (!existsSync(dest)) cpSync(await ensureBusyboxRootfs(), dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}

async function containerIds(ns: string): Promise<string[]> {
  return (await grpc.call('containers', 'List', ns, {})).containers.map((c) => c.id).sort();
}

async function snapshotKeys(ns: string): Promise<string[]> {
  const keys: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = grpc.stream('snapshots', 'List', ns, { snapshotter: 'overlayfs' });
    s.on('data', (m: { info: { name: string }[] }) => keys.push(...m.info.map((i) => i.name)));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  return keys.filter((k) => k.startsWith('tnt-'));
}

async function uidMapOf(ns: string, id: string): Promise<{ hostID: number; size: number }> {
  const { state } = await call((c) => c.call('inspect', { ns, id }));
  assert.ok(state.pid > 0, `${ns}/${id} runs`);
  const map = parseIdMap(readFileSync(`/proc/${state.pid}/uid_map`, 'utf8'));
  assert.equal(map.length, 1);
  return { hostID: map[0]?.hostID ?? 0, size: map[0]?.size ?? 0 };
}

const sleeper = (name: string, rootfs: string): Container => ({ name, rootfs, entrypoint: ['sh', '-c', `echo hello from ${name}; exec sleep 100000`], interactive: false, shutdownTimeout: 1 });

before(async () => {
  mkdirSync(BASE, { recursive: true });
  mkdirSync(path.join(WORK, 'data'), { recursive: true });
  writeFileSync(path.join(WORK, 'data', 'hello.txt'), 'shared\n');
  const r = spawnSync('ip', ['netns', 'add', NETNS], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  mgr = await startTestManager({ name: `tnt-${TAG}` });
  ctrd = await startContainerd({ name: `tnt-${TAG}`, runtimeBinary: SYSRUNC, env: mgr.env, namespace: B });
  image = await ensureContainerdImage(ctrd);
  grpc = new ContainerdClient(ctrd.address);
  await startService();
  await call((c) => c.call('createNS', { ns: A }));
});

after(async () => {
  for (const ns of [A, B, A_DOT, A_LEN]) {
    for (const id of (await containerIds(ns).catch(() => [])) ?? []) {
      const name = parseContainerdId(id)?.name ?? id.slice(ns.length + 1);
      await call((c) => c.call('delete', { ns, id: name })).catch(() => undefined);
    }
  }
  await kill9Service();
  grpc?.close();
  await ctrd?.stop({ purge: true });
  const runDir = mgr?.runDir;
  await mgr?.dispose();
  if (runDir !== undefined) {
    for (const sub of ['hints', 'bundles', 'containers']) removeEmptyDir(path.join(runDir, sub));
    rmSync(path.join(runDir, MOUNT_NS_LOCK_FILE), { force: true });
    removeEmptyDir(runDir);
  }
  // The tenants' parent cgroups (runc removes only the containers' own), ours by name; empty ones only.
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const top = path.join('/sys/fs/cgroup', controller, `tnt-e2e-${TAG}`);
    if (!existsSync(top)) continue;
    for (const ns of readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory())) removeEmptyDir(path.join(top, ns.name));
    removeEmptyDir(top);
  }
  spawnSync('ip', ['netns', 'delete', NETNS]);
  rmSync(WORK, { recursive: true, force: true });
  rmSync(BASE, { recursive: true, force: true });
});

test('a request from a non-root peer is answered under its seq with the refusal naming sysrunc-tenantd, as the manager does', async () => {
  await assertRefusesNonRootPeer(SOCKET, 'sysrunc-tenantd');
});

test('Run starts two containers in each of two tenants, a rootfs path or an image in the content store', async () => {
  await call(async (c) => {
    await c.call('run', { ns: A, container: sleeper('a1', await rootfsCopy('a1')) });
    await c.call('run', { ns: A, container: sleeper('a2', await rootfsCopy('a2')) });
    await c.call('run', { ns: B, container: sleeper('b1', await rootfsCopy('b1')) });
    await c.call('run', { ns: B, container: { name: 'b2', image, entrypoint: ['sh', '-c', 'echo hello from b2; exec sleep 100000'], shutdownTimeout: 1 } });
  });
  for (const [ns, ids] of [[A, ['a1', 'a2']], [B, ['b1', 'b2']]] as const) {
    const { containers } = await call((c) => c.call('list', { ns }));
    assert.deepEqual(containers.map((x) => [x.id, x.status]).sort(), ids.map((id) => [id, 'running']));
  }
  const { namespaces } = await call((c) => c.call('listNS', {}));
  assert.ok(namespaces.includes(A) && namespaces.includes(B), namespaces.join(','));
});

test('Inspect returns exactly what Run was given, read back from containerd', async () => {
  const given: Container = {
    name: 'full',
    rootfs: await rootfsCopy('full'),
    env: ['GREETING=hi', 'EMPTY='],
    workingDir: '/tmp',
    network: { namespace: NETNS },
    mounts: [
      { source: path.join(WORK, 'data'), target: '/data', type: 'bind', options: ['ro'] },
      { source: 'tmpfs', target: '/scratch', type: 'tmpfs', options: ['size=1m'] },
    ],
    entrypoint: ['sh', '-c', 'exec sleep 100000'],
    interactive: true,
    cpu: 0.5,
    memory: 64 << 20,
    shutdownTimeout: 2,
  };
  await call((c) => c.call('run', { ns: A, container: given }));
  // A fresh service knows only what containerd holds.
  await kill9Service();
  await startService();
  const { container, state } = await call((c) => c.call('inspect', { ns: A, id: 'full' }));
  assert.deepEqual(container, given);
  assert.equal(state.status, 'running');
  // tini is PID 1 (the entrypoint its child), the bind mount is there, the netns is the named one;
  // seen from the host (runc 1.1 cannot exec into a container in a host-owned netns).
  assert.equal(readFileSync(`/proc/${state.pid}/cmdline`, 'utf8').split('\0')[0], '/dev/.sysrunc-tini');
  assert.equal(readFileSync(`/proc/${state.pid}/root/data/hello.txt`, 'utf8'), 'shared\n');
  assert.equal(statSync(`/proc/${state.pid}/ns/net`).ino, statSync(`/var/run/netns/${NETNS}`).ino);
  // The limits reach the container's cgroups (v1 here).
  const cg = (controller: string): string => {
    const line = readFileSync(`/proc/${state.pid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
    return path.join('/sys/fs/cgroup', controller, line?.split(':')[2] ?? '/nonexistent');
  };
  assert.equal(readFileSync(path.join(cg('memory'), 'memory.limit_in_bytes'), 'utf8').trim(), String(64 << 20));
  assert.equal(readFileSync(path.join(cg('cpu'), 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
  await call((c) => c.call('delete', { ns: A, id: 'full' }));
});

test('each container has its own user namespace, and the host ranges are disjoint across tenants', async () => {
  const maps = await Promise.all([[A, 'a1'], [A, 'a2'], [B, 'b1'], [B, 'b2']].map(([ns, id]) => uidMapOf(ns ?? '', id ?? '')));
  for (const m of maps) assert.ok(m.hostID > 0 && m.size >= 65536, JSON.stringify(m));
  assert.ok(disjoint(maps.map((m) => ({ start: m.hostID, size: m.size }))), JSON.stringify(maps));
});

test('Exec returns the command\'s output and exit code', async () => {
  const r = await call((c) => c.call('exec', { ns: B, id: 'b2', args: ['sh', '-c', 'echo out; echo err >&2; exit 7'] }));
  assert.deepEqual(r, { exitCode: 7, stdout: 'out\n', stderr: 'err\n' });
});

test('Exec still running at its timeout is killed with every process it started, and answers timeout', async () => {
  // The exec'd shell backgrounds one sleep and becomes another.
  const script = 'sleep 6001 & exec sleep 6002';
  await assert.rejects(
    call((c) => c.call('exec', { ns: A, id: 'a1', args: ['sh', '-c', script], timeout: 1 })),
    (err: unknown) => err instanceof TenantError && err.code === 'timeout',
  );
  const { state } = await call((c) => c.call('inspect', { ns: A, id: 'a1' }));
  const inside = commandLinesInPidNamespaceOf(state.pid);
  assert.ok(inside.some((line) => line.includes('sleep 100000')), `the container's own process is listed: ${inside.join('; ')}`);
  assert.deepEqual(inside.filter((line) => /sleep 600[12]/.test(line)), [], 'no process of the exec is left');
});

/** Command lines (space-joined; zombies have none) of the processes in `pid`'s pid namespace. */
function commandLinesInPidNamespaceOf(pid: number): string[] {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const out: string[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      const line = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      if (line !== '') out.push(line);
    } catch {
      // exited while we looked
    }
  }
  return out;
}

test('Logs return the entrypoint\'s output', async () => {
  await waitUntil('a2 to log', async () => (await call((c) => c.call('logs', { ns: A, id: 'a2' }))).stdout.includes('hello'), 10_000, 100);
  const r = await call((c) => c.call('logs', { ns: A, id: 'a2', tail: 1 }));
  assert.equal(r.stdout, 'hello from a2\n');
  assert.equal(r.stderr, '');
});

test('the service killed -9 and restarted: containers keep running and Inspect still answers', async () => {
  const before_ = await uidMapOf(A, 'a1');
  const pid = (await call((c) => c.call('inspect', { ns: A, id: 'a1' }))).state.pid;
  await kill9Service();
  assert.ok(pidAlive(pid));
  await startService();
  const { container, state } = await call((c) => c.call('inspect', { ns: A, id: 'a1' }));
  assert.deepEqual(container, sleeper('a1', await rootfsCopy('a1')));
  assert.equal(state.pid, pid);
  assert.equal(state.restarts, 0);
  assert.deepEqual(await uidMapOf(A, 'a1'), before_);
});

test('a task that exited while the service was down is restarted when it starts again (reconcile)', async () => {
  await call(async (c) => c.call('run', { ns: A, container: sleeper('rec', await rootfsCopy('rec')) }));
  const pid = (await call((c) => c.call('inspect', { ns: A, id: 'rec' }))).state.pid;
  await kill9Service();
  process.kill(pid, 'SIGKILL'); // the container's init: the whole container goes
  await waitUntil(`pid ${pid} to be gone`, () => !pidAlive(pid), 10_000, 50);
  await startService();
  await waitUntil('rec to run again', async () => {
    const { state } = await call((c) => c.call('inspect', { ns: A, id: 'rec' }));
    return state.status === 'running' && state.restarts === 1;
  }, 20_000, 100);
  assert.notEqual((await call((c) => c.call('inspect', { ns: A, id: 'rec' }))).state.pid, pid);
  await call((c) => c.call('delete', { ns: A, id: 'rec' }));
});

test('a task that keeps exiting is restarted a bounded number of times, then reported failed', async () => {
  await call(async (c) => c.call('run', { ns: A, container: { name: 'crash', rootfs: await rootfsCopy('crash'), entrypoint: ['sh', '-c', 'echo run; exit 3'] } }));
  await waitUntil('crash to be failed', async () => (await call((c) => c.call('inspect', { ns: A, id: 'crash' }))).state.failed !== undefined, 60_000, 200);
  const { state } = await call((c) => c.call('inspect', { ns: A, id: 'crash' }));
  assert.equal(state.restarts, 2);
  assert.match(state.failed ?? '', /status 3.*2 restarts/);
  assert.equal((await call((c) => c.call('logs', { ns: A, id: 'crash' }))).stdout, 'run\nrun\nrun\n');
  await call((c) => c.call('delete', { ns: A, id: 'crash' }));
});

const BAD: ReadonlyArray<readonly [string, string, string, () => Promise<Container>]> = [
  ['unknown namespace', 'tnt-nosuch', 'unknown-namespace', async () => sleeper('bad-ns', await rootfsCopy('a1'))],
  ['duplicate name', A, 'duplicate-name', async () => sleeper('a1', await rootfsCopy('a1'))],
  ['missing rootfs', A, 'missing-rootfs', async () => sleeper('bad-rootfs', path.join(WORK, 'no-such-rootfs'))],
  ['missing netns', A, 'missing-netns', async () => ({ ...sleeper('bad-netns', await rootfsCopy('a1')), network: { namespace: `tnt-nosuch-${TAG}` } })],
  ['bind mount of a missing source', A, 'invalid-mount', async () => ({ ...sleeper('bad-mount', await rootfsCopy('a1')), mounts: [{ source: path.join(WORK, 'nope'), target: '/x', type: 'bind' }] })],
  ['mount of an unknown filesystem type', A, 'invalid-mount', async () => ({ ...sleeper('bad-fstype', await rootfsCopy('a1')), mounts: [{ source: 'x', target: '/x', type: 'nosuchfs' }] })],
  ['missing image', B, 'missing-image', async () => ({ name: 'bad-image', image: 'docker.io/library/nosuch:tag', entrypoint: ['true'] })],
];

for (const [what, ns, code, make] of BAD) {
  test(`bad input (${what}) answers ${code}, names the thing, and leaves nothing in containerd or on the host`, async () => {
    const before_ = ns === 'tnt-nosuch' ? [] : await containerIds(ns);
    const container = await make();
    const thing = code === 'unknown-namespace' ? ns : container.name;
    await assert.rejects(
      call((c) => c.call('run', { ns, container })),
      (err: unknown) => err instanceof TenantError && err.code === code && err.message.includes(thing),
    );
    if (ns !== 'tnt-nosuch') {
      assert.deepEqual(await containerIds(ns), before_);
      assert.deepEqual((await snapshotKeys(ns)).filter((k) => k.endsWith(container.name)), []);
    } else {
      assert.ok(!(await call((c) => c.call('listNS', {}))).namespaces.includes(ns));
    }
    if (container.name !== 'a1') assert.deepEqual(await leftovers(mgr, [`${ns}.${container.name}`]), NOTHING_LEFT);
  });
}

test('a Run that fails in the runtime removes its container, snapshot and allocation', async () => {
  // The entrypoint does not exist: runc's create fails after sysrunc registered the container.
  await assert.rejects(
    call((c) => c.call('run', { ns: B, container: { name: 'bad-entry', image, entrypoint: ['/no/such/binary'] } })),
    (err: unknown) => err instanceof TenantError && err.code === 'containerd-failed' && err.message.includes('bad-entry'),
  );
  assert.ok(!(await containerIds(B)).includes(containerdId(B, 'bad-entry')));
  assert.deepEqual(await snapshotKeys(B), ['tnt-rootfs-b2']);
  assert.deepEqual(await leftovers(mgr, [containerdId(B, 'bad-entry')]), NOTHING_LEFT);
});

test('sysrunc-ctl status --json lists each container with its range and ownership mode, and the free ranges', async () => {
  const r = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['status', '--json', '--manager-socket', mgr.socket], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { containers: Array<{ id: string; uidMappings: Array<{ hostID: number }>; ownership?: { mode: string; reason: string } }>; ranges: { freeUid: unknown[] }; allocations: unknown[] };
  assert.deepEqual(s.containers.map((c) => c.id).sort(), [containerdId(A, 'a1'), containerdId(A, 'a2'), containerdId(B, 'b1'), containerdId(B, 'b2')]);
  const a1 = s.containers.find((c) => c.id === containerdId(A, 'a1'));
  assert.equal(a1?.uidMappings[0]?.hostID, (await uidMapOf(A, 'a1')).hostID);
  assert.ok(a1?.ownership !== undefined && a1.ownership.reason !== '', JSON.stringify(a1));
  assert.equal(s.allocations.length, 4);
  assert.ok(s.ranges.freeUid.length > 0);
  const text = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['status', '--manager-socket', mgr.socket], { encoding: 'utf8' });
  assert.match(text.stdout, /^subid mode exclusive: \d+ of \d+ uids in use, 4 allocations/);
});

test('sysrunc-ctl tenant commands drive the service, and a bad input exits 1 with its code', async () => {
  const ctl = (...args: string[]) => spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['tenant', ...args, '--socket', SOCKET], { encoding: 'utf8' });
  const list = ctl('list', A);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^a1\trunning\t\d+\trestarts=0$/m);
  const ex = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['tenant', 'exec', '--socket', SOCKET, A, 'a1', 'sh', '-c', 'echo hi; exit 4'], { encoding: 'utf8' });
  assert.equal(ex.status, 4, ex.stderr);
  assert.equal(ex.stdout, 'hi\n');
  const bad = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['tenant', 'run', '--socket', SOCKET, '--rootfs', '/nonexistent-tnt', A, 'bad-cli', 'true'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'sysrunc-ctl: missing-rootfs: container bad-cli: rootfs /nonexistent-tnt is not a directory\n');
});

test('Delete removes the task, the container, its snapshot and logs, and everything sysrunc allocated', async () => {
  const ids = [[A, 'a1'], [A, 'a2'], [B, 'b1'], [B, 'b2']] as const;
  const pids = await Promise.all(ids.map(async ([ns, id]) => (await call((c) => c.call('inspect', { ns, id }))).state.pid));
  for (const [ns, id] of ids) await call((c) => c.call('delete', { ns, id }));
  for (const pid of pids) assert.ok(!pidAlive(pid));
  assert.deepEqual(await containerIds(A), []);
  assert.deepEqual(await containerIds(B), []);
  assert.deepEqual(await snapshotKeys(B), []);
  assert.ok(!existsSync(path.join(WORK, 'state', 'logs', A, containerdId(A, 'a1'))));
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
  await assert.rejects(call((c) => c.call('inspect', { ns: A, id: 'a1' })), (err: unknown) => err instanceof TenantError && err.code === 'not-found');
});

test('tenant a\'s "col.c" and tenant "a.col"\'s "c" are two containers, with two ranges', async () => {
  await call((c) => c.call('createNS', { ns: A_DOT }));
  await call(async (c) => {
    await c.call('run', { ns: A, container: sleeper('col.c', await rootfsCopy('col.c')) });
    await c.call('run', { ns: A_DOT, container: sleeper('c', await rootfsCopy('c')) });
  });
  const maps = [await uidMapOf(A, 'col.c'), await uidMapOf(A_DOT, 'c')];
  assert.ok(disjoint(maps.map((m) => ({ start: m.hostID, size: m.size }))), JSON.stringify(maps));
  await call((c) => c.call('delete', { ns: A, id: 'col.c' }));
  assert.equal((await call((c) => c.call('inspect', { ns: A_DOT, id: 'c' }))).state.status, 'running', 'the other tenant\'s container kept running');
  await call((c) => c.call('delete', { ns: A_DOT, id: 'c' }));
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});

/** A container record as a version before 0.3 made it: a copy of a new one under the old-style id. */
async function plantOldStyle(ns: string, name: string): Promise<void> {
  await call(async (c) => c.call('run', { ns: A, container: sleeper('template', await rootfsCopy('template')) }));
  const t = (await grpc.call('containers', 'Get', A, { id: containerdId(A, 'template') })).container;
  assert.ok(t !== null, 'the template container is in containerd');
  await call((c) => c.call('delete', { ns: A, id: 'template' }));
  const labels = { ...t.labels, [LABELS.name]: name };
  await grpc.call('containers', 'Create', ns, { container: { id: legacyContainerdId(ns, name), labels, image: '', runtime: t.runtime, spec: t.spec } });
}

test('a container named the old way (<ns>.<name>) is still listed, inspected and deleted by its name', async () => {
  await plantOldStyle(A, 'old.one');
  assert.ok((await call((c) => c.call('list', { ns: A }))).containers.some((x) => x.id === 'old.one'));
  assert.equal((await call((c) => c.call('inspect', { ns: A, id: 'old.one' }))).container.name, 'old.one');
  await call((c) => c.call('delete', { ns: A, id: 'old.one' }));
  assert.deepEqual(await containerIds(A), []);
});

test('a Run whose id an old-style container of another tenant has is refused as a duplicate', async () => {
  await call((c) => c.call('createNS', { ns: A_LEN }));
  await plantOldStyle(A_LEN, 'clash');
  assert.equal(legacyContainerdId(A_LEN, 'clash'), containerdId(A, 'clash'));
  await assert.rejects(
    call(async (c) => c.call('run', { ns: A, container: sleeper('clash', await rootfsCopy('clash')) })),
    (err: unknown) => err instanceof TenantError && err.code === 'duplicate-name' && err.message.includes(A_LEN),
  );
  await call((c) => c.call('delete', { ns: A_LEN, id: 'clash' }));
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
