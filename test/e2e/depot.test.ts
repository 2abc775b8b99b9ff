// The depot (issue 11): long-lived sysrunc containers with a keep-alive init, processes run with
// `runc exec` under supervisors that outlive the daemon. Real runc, real sysrunc (a private
// manager), real processes. The test is the daemon's parent: it reaps the daemon it kills.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DepotClient } from '../../src/depot-api/client.ts';
import type { ProcessSpec } from '../../src/depot-api/v1.ts';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { sweepManager } from '../helpers/manager-state.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';
import { ensureBusyboxRootfs } from '../rig/images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { assertRefusesNonRootPeer } from '../helpers/peer-refusal.ts';
import { mountsUnder, pidAlive, waitUntil } from '../rig/proc.ts';

const TAG = `${process.pid.toString(36)}`;
const BASE = `/run/sysrunc-test/dpt-${TAG}`;
const SOCKET = path.join(BASE, 'depotd.sock');
const DEPOT = path.join(BASE, 'depot');
const RUNC_ROOT = path.join(BASE, 'runc');
const WORK = `/var/tmp/dpt-e2e-${TAG}`;
const MAIN = `dpt-main-${TAG}`;

let mgr: TestManager;
let daemon: ChildProcess | undefined;
let mainRootfs: string;

async function startDaemon(): Promise<void> {
  const log = openSync(path.join(WORK, 'depotd.log'), 'a');
  daemon = spawn(path.join(REPO_ROOT, 'bin', 'sysrunc-depotd'), ['--socket', SOCKET, '--depot', DEPOT, '--runc-root', RUNC_ROOT, '--log-level', 'debug'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...mgr.env },
  });
  closeSync(log);
  const c = await DepotClient.connect(SOCKET, 20_000);
  await c.call('ping', {});
  c.close();
}

async function kill9Daemon(): Promise<void> {
  const d = daemon;
  if (d === undefined || d.exitCode !== null || d.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    d.once('exit', () => resolve());
    d.kill('SIGKILL');
  });
}

async function withClient<T>(fn: (c: DepotClient) => Promise<T>): Promise<T> {
  const c = await DepotClient.connect(SOCKET, 20_000);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** A private copy of the busybox rootfs (the depot uses it in place). */
async function rootfsCopy(name: string): Promise<string> {
  const dest = path.join(WORK, name);
  cpSync(await ensureBusyboxRootfs(), dest, { recursive: true, verbatimSymlinks: true });
  return dest;
}

/** The manager's records, read without a sweep (a sweep would release what is gone by itself). */
async function managerIds(): Promise<string[]> {
  const client = await ManagerClient.connect(mgr.socket);
  try {
    return (await client.call('list', {})).containers.map((c) => c.id);
  } finally {
    client.close();
  }
}

const exec = (spec: ProcessSpec, container = MAIN): Promise<{ process: string; pid: number }> => withClient((c) => c.call('exec', { container, spec }));

interface Attached {
  stdout: string;
  stderr: string;
  exitCode: number;
}

async function attach(process_: string, container = MAIN, offsets: { stdoutOffset?: number; stderrOffset?: number } = {}): Promise<Attached> {
  const out = { stdout: '', stderr: '' };
  const { exitCode } = await withClient((c) =>
    c.attach({ container, process: process_, ...offsets }, (e) => {
      out[e.stream] += Buffer.from(e.data, 'base64').toString('utf8');
    }),
  );
  return { ...out, exitCode };
}

const waitExit = (process_: string, container = MAIN): Promise<number> => withClient(async (c) => (await c.call('wait', { container, process: process_ })).exitCode);

function depotFifos(): string[] {
  if (!existsSync(DEPOT)) return [];
  return readdirSync(DEPOT, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFIFO())
    .map((e) => path.join(e.parentPath, e.name));
}

/** Host cgroup dirs of a process (cgroup v1 hierarchies and v2), from /proc/<pid>/cgroup. */
function cgroupDirs(pid: number): string[] {
  const dirs: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean)) {
    const [, controllers, rel] = line.split(':') as [string, string, string];
    const name = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    const dir = path.join('/sys/fs/cgroup', name, rel);
    if (existsSync(dir) && rel !== '/') dirs.push(dir);
  }
  return dirs;
}

/** Processes in the pid namespace of `init` (host view), with their state letter. */
function namespaceProcesses(init: number): { pid: number; state: string }[] {
  const ns = readlinkSync(`/proc/${init}/ns/pid`);
  const out: { pid: number; state: string }[] = [];
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readlinkSync(`/proc/${e}/ns/pid`) !== ns) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      out.push({ pid: Number(e), state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

before(async () => {
  mkdirSync(WORK, { recursive: true });
  // The periodic sweep an hour apart: what is released here, the manager released on its own.
  mgr = await startTestManager({ name: `dpt-${TAG}`, extraArgs: ['--sweep-interval', String(3_600_000)] });
  await startDaemon();
  mainRootfs = await rootfsCopy('main-rootfs');
  await withClient((c) => c.call('create', { id: MAIN, rootfs: mainRootfs }));
});

after(async () => {
  try {
    if (daemon !== undefined && daemon.exitCode === null) {
      await withClient(async (c) => {
        for (const { id } of (await c.call('list', {})).containers) await c.call('destroy', { id });
      }).catch(() => undefined);
    }
  } finally {
    await kill9Daemon();
    // Anything a failed test left in the private runc root goes through sysrunc, so the manager releases it.
    const left = spawnSync('runc', ['--root', RUNC_ROOT, 'list', '-q'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
    for (const id of left) spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc'), ['--root', RUNC_ROOT, 'delete', '--force', id], { env: { ...process.env, ...mgr.env } });
    await sweepManager(mgr.socket).catch(() => undefined);
    await mgr.dispose();
    // The manager leaves its (empty) subdirectories behind; nothing is removed while a mount is there.
    if (mountsUnder([BASE, WORK, mgr.runDir]).length === 0) {
      for (const dir of [BASE, WORK, mgr.runDir]) rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('a request from a non-root peer is answered under its seq with the refusal naming sysrunc-depotd, as the manager does', async () => {
  await assertRefusesNonRootPeer(SOCKET, 'sysrunc-depotd');
});

test('a process that exits 0 reports exit code 0, and the container keeps running', async () => {
  const { process: id } = await exec({ args: ['true'] });
  assert.equal(await waitExit(id), 0);
  const [info] = (await withClient((c) => c.call('list', {}))).containers.filter((c) => c.id === MAIN);
  assert.equal(info?.status, 'running');
});

test('a process that exits 7 reports exit code 7', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'exit 7'] });
  assert.equal(await waitExit(id), 7);
});

test('a process killed by SIGKILL reports exit code 137', async () => {
  const { process: id } = await exec({ args: ['sleep', '1000'] });
  await withClient((c) => c.call('signal', { container: MAIN, process: id, signal: 9 }));
  assert.equal(await waitExit(id), 137);
});

test('stdout and stderr reach an attached client through the stdio channel', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'echo out; echo err >&2; exit 2'] });
  assert.deepEqual(await attach(id), { stdout: 'out\n', stderr: 'err\n', exitCode: 2 });
});

test('stdin sent by a client reaches the process, and closing it gives the process end of input', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'read line; echo "got $line"; cat; echo done'] });
  await withClient(async (c) => {
    await c.call('stdin', { container: MAIN, process: id, data: Buffer.from('hello\nrest\n').toString('base64') });
    await c.call('closeStdin', { container: MAIN, process: id });
  });
  assert.deepEqual(await attach(id), { stdout: 'got hello\nrest\ndone\n', stderr: '', exitCode: 0 });
});

test('a tty process gets its initial window size and sees a resize', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'stty size; read x; stty size'], tty: true, rows: 24, cols: 80 });
  const stdoutFile = path.join(DEPOT, MAIN, 'processes', id, 'stdout');
  await waitUntil('the first stty size', () => readFileSync(stdoutFile, 'utf8').includes('24 80'), 30_000);
  await withClient(async (c) => {
    await c.call('resize', { container: MAIN, process: id, rows: 40, cols: 120 });
    await c.call('stdin', { container: MAIN, process: id, data: Buffer.from('\n').toString('base64') });
  });
  const r = await attach(id);
  assert.equal(r.exitCode, 0);
  assert.match(r.stdout, /^24 80\r\n\r\n40 120\r\n$/);
});

test('after the daemon is killed with -9 and restarted, attach gets the remaining output and the exit code', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'echo before; read x; echo "after $x"; exit 3'] });
  // Attach and read up to "before", then the daemon dies under the client.
  const seen = await withClient(
    (c) =>
      new Promise<number>((resolve, reject) => {
        c.attach({ container: MAIN, process: id }, (e) => {
          if (e.stream === 'stdout' && Buffer.from(e.data, 'base64').toString().includes('before')) resolve(e.offset);
        }).catch(reject);
      }),
  );
  await kill9Daemon();
  const supervisor = Number(readFileSync(path.join(DEPOT, MAIN, 'processes', id, 'supervisor.pid'), 'utf8'));
  assert.ok(pidAlive(supervisor), 'the supervisor outlives the daemon');
  await startDaemon();
  const ps = await withClient((c) => c.call('ps', { container: MAIN }));
  assert.equal(ps.processes.find((p) => p.id === id)?.state, 'running');
  await withClient((c) => c.call('stdin', { container: MAIN, process: id, data: Buffer.from('again\n').toString('base64') }));
  assert.deepEqual(await attach(id, MAIN, { stdoutOffset: seen }), { stdout: 'after again\n', stderr: '', exitCode: 3 });
});

test('a process that finished while the daemon was down still reports its exit code', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'while [ ! -e /tmp/dpt-go ]; do sleep 0.05; done; echo finished; exit 5'] });
  await kill9Daemon();
  writeFileSync(path.join(mainRootfs, 'tmp', 'dpt-go'), '');
  const exitFile = path.join(DEPOT, MAIN, 'processes', id, 'exitcode');
  await waitUntil('the supervisor to write the exit code with no daemon', () => existsSync(exitFile), 30_000);
  await startDaemon();
  assert.equal(await waitExit(id), 5);
  assert.deepEqual(await attach(id), { stdout: 'finished\n', stderr: '', exitCode: 5 });
  const ps = await withClient((c) => c.call('ps', { container: MAIN }));
  assert.deepEqual(ps.processes.find((p) => p.id === id)?.exitCode, 5);
});

test('orphans in the container are reaped by the keep-alive init: no zombies while it runs', async () => {
  const init = (await withClient((c) => c.call('list', {}))).containers.find((c) => c.id === MAIN)?.pid ?? 0;
  assert.ok(init > 0);
  // Each subshell forks a short sleep and exits: the sleeps are orphans of the container's init.
  const { process: id } = await exec({ args: ['sh', '-c', 'for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 1'] });
  assert.equal(await waitExit(id), 0);
  await waitUntil('the container to be back to its init alone', () => namespaceProcesses(init).length === 1, 10_000);
  assert.deepEqual(namespaceProcesses(init), [{ pid: init, state: 'S' }]);
});

test('a process whose background child keeps its stdout open still reports its output and exit code when it exits', { timeout: 60_000 }, async () => {
  // The background sleep outlives the test (the container's destroy ends it): had the supervisor
  // waited for the end of stdout, this attach would never return.
  const { process: id } = await exec({ args: ['sh', '-c', 'sleep 1000 & echo hi; exit 8'] });
  assert.deepEqual(await attach(id), { stdout: 'hi\n', stderr: '', exitCode: 8 });
});

test('an exited process can be forgotten (its directory goes), a running one cannot', async () => {
  const running = await exec({ args: ['sleep', '1000'] });
  await assert.rejects(
    withClient((c) => c.call('forget', { container: MAIN, process: running.process })),
    (err: Error & { code?: string }) => err.code === 'conflict',
  );
  await withClient((c) => c.call('signal', { container: MAIN, process: running.process, signal: 15 }));
  assert.equal(await waitExit(running.process), 143);
  await withClient((c) => c.call('forget', { container: MAIN, process: running.process }));
  assert.equal(existsSync(path.join(DEPOT, MAIN, 'processes', running.process)), false);
});

test('exec of a program that does not exist fails with the runtime\'s message and leaves no process dir', async () => {
  await assert.rejects(
    withClient((c) => c.call('exec', { container: MAIN, process: 'dpt-missing', spec: { args: ['/no/such/program'] } })),
    (err: Error & { code?: string }) => err.code === 'runtime-failed' && /dpt-missing/.test(err.message) && /no such file|not found/i.test(err.message),
  );
  assert.equal(existsSync(path.join(DEPOT, MAIN, 'processes', 'dpt-missing')), false);
});

test('exec into a container the depot does not have is not-found, naming its directory', async () => {
  await assert.rejects(
    withClient((c) => c.call('exec', { container: 'dpt-nope', spec: { args: ['true'] } })),
    (err: Error & { code?: string }) => err.code === 'not-found' && err.message.includes(path.join(DEPOT, 'dpt-nope')),
  );
});

test('sysrunc-ctl exec runs a process attached and exits with its code; exec -d and wait give the same', async () => {
  const ctl = path.join(REPO_ROOT, 'bin', 'sysrunc-ctl');
  const env = { ...process.env, SYSRUNC_DEPOT_SOCKET: SOCKET };
  const fg = spawnSync(ctl, ['depot', 'exec', MAIN, 'sh', '-c', 'echo hi; exit 4'], { env, encoding: 'utf8' });
  assert.deepEqual({ status: fg.status, stdout: fg.stdout, stderr: fg.stderr }, { status: 4, stdout: 'hi\n', stderr: '' });
  const bg = spawnSync(ctl, ['depot', 'exec', '-d', '--id', 'dpt-cli', MAIN, 'sh', '-c', 'exit 6'], { env, encoding: 'utf8' });
  assert.deepEqual({ status: bg.status, stdout: bg.stdout }, { status: 0, stdout: 'dpt-cli\n' });
  const waited = spawnSync(ctl, ['depot', 'wait', MAIN, 'dpt-cli'], { env, encoding: 'utf8' });
  assert.deepEqual({ status: waited.status, stdout: waited.stdout }, { status: 6, stdout: '6\n' });
});

test('sysrunc-ctl attach rides out a daemon kill -9: it reconnects and prints the rest exactly once', async () => {
  const { process: id } = await exec({ args: ['sh', '-c', 'echo one; read x; echo two; exit 9'] });
  const child = spawn(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['depot', 'attach', MAIN, id], { env: { ...process.env, SYSRUNC_DEPOT_SOCKET: SOCKET }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitUntil('the attached CLI to print the first line', () => stdout === 'one\n', 30_000);
  await kill9Daemon();
  await startDaemon();
  await withClient((c) => c.call('stdin', { container: MAIN, process: id, data: Buffer.from('go\n').toString('base64') }));
  assert.equal(await exited, 9, stderr);
  assert.equal(stdout, 'one\ntwo\n');
});

test('destroy leaves no FIFOs, supervisors, process dirs, mounts or cgroups', async () => {
  const id = `dpt-gone-${TAG}`;
  const rootfs = await rootfsCopy('gone-rootfs');
  const { pid: init } = await withClient((c) => c.call('create', { id, rootfs }));
  const cgroups = cgroupDirs(init);
  assert.ok(cgroups.length > 0, 'the container has cgroups of its own');
  const started = await Promise.all([exec({ args: ['sleep', '1000'] }, id), exec({ args: ['sh', '-c', 'cat'], tty: true }, id)]);
  const supervisors = started.map((s) => Number(readFileSync(path.join(DEPOT, id, 'processes', s.process, 'supervisor.pid'), 'utf8')));
  assert.ok(depotFifos().some((f) => f.includes(id)));
  // Mounts on the rootfs itself (its path does not hold the id) and the manager's for the id.
  const mountsOfIt = (): string[] => [...mountsUnder([rootfs]), ...mountsUnder([mgr.runDir]).filter((m) => m.includes(id))];
  assert.ok(mountsOfIt().length > 0, 'while it runs, the container has mounts that must go');
  const { processes } = await withClient((c) => c.call('destroy', { id }));
  assert.equal(processes, 2);
  assert.equal(existsSync(path.join(DEPOT, id)), false, 'the container dir is gone');
  assert.deepEqual(depotFifos().filter((f) => f.includes(id)), []);
  assert.deepEqual(supervisors.filter(pidAlive), [], 'no supervisor left');
  assert.equal(pidAlive(init), false, 'the init is gone');
  // No sweep: the manager's own release (it sees runc's state go) must remove them.
  await waitUntil('the manager to release the container', async () => !(await managerIds()).includes(id), 10_000);
  assert.deepEqual(mountsOfIt(), []);
  await waitUntil('the container cgroups to go', () => cgroups.every((d) => !existsSync(d)), 10_000);
  assert.equal(statSync(DEPOT).isDirectory(), true);
});
