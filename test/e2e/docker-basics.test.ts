// Issue 2: everyday docker commands work unchanged with --runtime=sysrunc.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { assertValidConfig } from '../helpers/schema.ts';
import { containerId, leftovers, managerList, NOTHING_LEFT, runcState, scratchDir, startE2ERig, waitForStatus, type E2ERig } from './helpers.ts';

const NAME = 'e2e-basics';
let rig: E2ERig;
let work: string;

before(async () => {
  work = scratchDir('basics');
  rig = await startE2ERig(NAME);
  // A long-running container shared by the tests that only look at it.
  await rig.run(['-d', '--name', 'long', 'bb:local', 'sleep', '1000']);
});
after(async () => {
  await rig?.dispose();
  rmSync(work, { recursive: true, force: true });
});

test('docker run --rm: exit status 0 and the command output', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', 'echo hello from sysrunc'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, 'hello from sysrunc');
});

test('docker run --rm: the command exit status is docker run exit status', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', 'echo before-exit; exit 3'], { reject: false });
  assert.equal(r.exitCode, 3, r.stderr);
  assert.equal(r.stdout, 'before-exit');
});

test('docker run: a container killed with docker kill ends docker run with 137', async () => {
  const running = rig.run(['--rm', '--name', 'killed-fg', 'bb:local', 'sleep', '1000'], { reject: false });
  await waitForStatus(rig.d, 'killed-fg', 'running');
  await rig.docker(['kill', 'killed-fg']);
  const r = await running;
  assert.equal(r.exitCode, 137, r.stderr);
});

test('docker run --rm: leaves no manager record, mount, run dir or allocation behind', async () => {
  const cidfile = path.join(work, 'rm-check.cid');
  await rig.run(['--rm', '--cidfile', cidfile, 'bb:local', 'true']);
  const id = readFileSync(cidfile, 'utf8').trim();
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});

test('docker exec: the command output and exit status', async () => {
  const r = await rig.docker(['exec', 'long', 'sh', '-c', 'echo exec-out; echo exec-err >&2; exit 5'], { reject: false });
  assert.equal(r.exitCode, 5);
  assert.equal(r.stdout, 'exec-out');
  assert.equal(r.stderr, 'exec-err');
});

test('docker stop -t 1: a sleep that ignores SIGTERM as pid 1 is killed after the timeout (exit 137)', async () => {
  await rig.run(['-d', '--name', 'stopped', 'bb:local', 'sleep', '1000']);
  await rig.docker(['stop', '-t', '1', 'stopped']);
  assert.equal(await rig.d.docker(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'stopped']).then((r) => r.stdout), 'exited 137');
});

test('docker kill: the container exits with 137', async () => {
  await rig.run(['-d', '--name', 'killed', 'bb:local', 'sleep', '1000']);
  await rig.docker(['kill', 'killed']);
  await waitForStatus(rig.d, 'killed', 'exited');
  assert.equal((await rig.docker(['inspect', '--format', '{{.State.ExitCode}}', 'killed'])).stdout, '137');
});

test('docker run -t: the process gets a terminal through the console socket', async () => {
  const r = await rig.run(['--rm', '-t', 'bb:local', 'sh', '-c', 'tty'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), '/dev/pts/0');
});

test('docker run -i: piped stdin reaches the container process', async () => {
  const r = await rig.run(['-i', '--rm', 'bb:local', 'cat'], { input: 'hi\nthere\n', reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, 'hi\nthere');
});

test('docker pause / unpause: status paused, then running again', async () => {
  await rig.run(['-d', '--name', 'paused', 'bb:local', 'sleep', '1000']);
  await rig.docker(['pause', 'paused']);
  assert.equal((await rig.docker(['inspect', '--format', '{{.State.Status}}', 'paused'])).stdout, 'paused');
  const id = await containerId(rig.d, 'paused');
  assert.equal((await runcState(rig.d, id)).status, 'paused');
  await rig.docker(['unpause', 'paused']);
  assert.equal((await rig.docker(['inspect', '--format', '{{.State.Status}}', 'paused'])).stdout, 'running');
  assert.equal((await rig.docker(['exec', 'paused', 'echo', 'awake'])).stdout, 'awake');
});

test('docker top: lists the container process', async () => {
  const r = await rig.docker(['top', 'long']);
  assert.match(r.stdout, /sleep 1000/);
});

test('docker update --memory 64m --memory-swap 128m: the host cgroup v1 memory limit is 64 MiB', async () => {
  await rig.run(['-d', '--name', 'updated', 'bb:local', 'sleep', '1000']);
  await rig.docker(['update', '--memory', '64m', '--memory-swap', '128m', 'updated']);
  const id = await containerId(rig.d, 'updated');
  const cgroup = path.join('/sys/fs/cgroup/memory', `sysrunc-test-${NAME}`, id);
  assert.equal(readFileSync(path.join(cgroup, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
  assert.equal(readFileSync(path.join(cgroup, 'memory.memsw.limit_in_bytes'), 'utf8').trim(), String(128 * 1024 * 1024));
});

test('docker logs: what the container wrote to stdout and stderr', async () => {
  await rig.run(['-d', '--name', 'logged', 'bb:local', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2']);
  await waitForStatus(rig.d, 'logged', 'exited');
  const r = await rig.docker(['logs', 'logged']);
  assert.equal(r.stdout, 'to-stdout');
  assert.equal(r.stderr, 'to-stderr');
});

test('docker restart: a detached container runs again with a new init process', async () => {
  await rig.run(['-d', '--name', 'restarted', 'bb:local', 'sleep', '1000']);
  const before = await rig.docker(['inspect', '--format', '{{.State.Pid}}', 'restarted']);
  await rig.docker(['restart', '-t', '1', 'restarted']);
  const after = await rig.docker(['inspect', '--format', '{{.State.Status}} {{.State.Pid}}', 'restarted']);
  const [status, pid] = after.stdout.split(' ');
  assert.equal(status, 'running');
  assert.notEqual(pid, before.stdout);
  assert.equal((await rig.docker(['exec', 'restarted', 'echo', 'back'])).stdout, 'back');
});

test('the config.json sysrunc wrote for a running container is a valid OCI config with a user namespace', async () => {
  // The manager's prepared bundle (runc reads its config.json bound over the caller's).
  const id = await containerId(rig.d, 'long');
  const config: unknown = JSON.parse(readFileSync(path.join(rig.mgr.runDir, 'bundles', id, 'config.json'), 'utf8'));
  assertValidConfig(config);
  assert.ok(config.linux?.namespaces?.some((ns) => ns.type === 'user'), 'no user namespace in config.json');
  assert.ok((config.linux?.uidMappings ?? []).length > 0, 'no uidMappings in config.json');
});

test('dockerd\'s own bundle keeps the config.json it wrote (no user namespace, no backup file beside it), and is state.bundle', async () => {
  const id = await containerId(rig.d, 'long');
  const record = (await managerList(rig.mgr)).find((c) => c.id === id);
  assert.ok(record !== undefined, 'the manager has no record of the container');
  const state = await runcState(rig.d, id);
  assert.equal(state.bundle, record.bundle, 'runc state names the caller\'s bundle');
  const original: unknown = JSON.parse(readFileSync(path.join(record.bundle, 'config.json'), 'utf8'));
  assertValidConfig(original);
  assert.equal(original.linux?.uidMappings, undefined);
  assert.deepEqual(original.process?.args, ['sleep', '1000']);
  assert.equal(existsSync(path.join(record.bundle, 'config.json.sysrunc-orig')), false);
});
