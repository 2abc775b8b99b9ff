// The subcommands sysrunc does not transform go straight from bin/sysrunc to runc, without Node,
// and answer byte for byte as runc does; the global flags parse the way runc's do, whatever their
// spelling and order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SYSRUNC } from '../helpers/manager.ts';
import { comparableState, startFixture, type Fixture, type Outcome, type Runtime } from './fixture.ts';
import { managerRecords, recordsOnceReleased } from './helpers/host-state.ts';
import { waitFor } from './helpers/spawn.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('passthrough');
});
after(async () => fx.dispose());

// Distinct ids: runc's default cgroup path is /<id>, shared by namesakes in different roots.
const cid = (rt: Runtime, name: string) => `${name}-${rt.name}`;
/** Makes bin/sysrunc exec /bin/false wherever it would start Node. */
const NO_NODE = { SYSRUNC_NODE: '/bin/false' };

async function both(step: (rt: Runtime) => Promise<Outcome>): Promise<{ runc: Outcome; sysrunc: Outcome }> {
  return { runc: await step(fx.runc), sysrunc: await step(fx.sysrunc) };
}

/** The same argv (no --root prepended) through runc and through sysrunc without Node. */
async function sameArgv(argv: string[], opts: { cwd?: string } = {}): Promise<{ runc: Outcome; sysrunc: Outcome }> {
  return {
    runc: await fx.runc.cli(argv, { ...opts, noRoot: true }),
    sysrunc: await fx.sysrunc.cli(argv, { ...opts, noRoot: true, env: NO_NODE }),
  };
}

function emptyDir(name: string): string {
  const dir = path.join(fx.work, name);
  mkdirSync(dir);
  return dir;
}

async function createWithRunc(name: string, args: string[]): Promise<string> {
  const b = await fx.bundle(`${name}-runc`, args);
  const out = await fx.runc.cli(['create', '--bundle', b.bundle, cid(fx.runc, name)]);
  assert.equal(out.exitCode, 0, out.stderr);
  return cid(fx.runc, name);
}

async function status(rt: Runtime, id: string, argv: readonly string[] = []): Promise<string | undefined> {
  const out = await rt.cli([...argv, 'state', id], { noRoot: argv.length > 0 });
  return out.exitCode === 0 ? (JSON.parse(out.stdout) as { status: string }).status : undefined;
}

/** runc's logrus lines carry a time; the rest must match. */
const untimed = (text: string) => text.replace(/time="[^"]*"/g, 'time="<time>"');

test('without Node, state answers byte for byte as runc does', async () => {
  const id = await createWithRunc('nonode-state', ['sleep', '1000']);
  const out = await sameArgv(['--root', fx.runc.root, 'state', id]);
  assert.equal(out.runc.exitCode, 0, out.runc.stderr);
  assert.deepEqual(out.sysrunc, out.runc);
});

test("without Node, state with sysrunc's --sysrunc- runtime flags answers byte for byte as runc without them", async () => {
  const id = await createWithRunc('nonode-flags', ['sleep', '1000']);
  const runc = await fx.runc.cli(['--root', fx.runc.root, 'state', id], { noRoot: true });
  const sysrunc = await fx.sysrunc.cli(['--sysrunc-bind-ownership=host-root', '--root', fx.runc.root, '-sysrunc-userns-size=131072', 'state', id], { noRoot: true, env: NO_NODE });
  assert.equal(runc.exitCode, 0, runc.stderr);
  assert.deepEqual(sysrunc, runc);
});

test('without Node, list answers byte for byte as runc does', async () => {
  await createWithRunc('nonode-list', ['sleep', '1000']);
  for (const format of [[], ['--format=json'], ['-q']]) {
    const out = await sameArgv(['--root', fx.runc.root, 'list', ...format]);
    assert.equal(out.runc.exitCode, 0, out.runc.stderr);
    assert.deepEqual(out.sysrunc, out.runc, `list ${format.join(' ')}`);
  }
});

test('without Node, spec writes the same config.json as runc', async () => {
  const dirs = { runc: emptyDir('nonode-spec-runc'), sysrunc: emptyDir('nonode-spec-sysrunc') };
  const out = {
    runc: await fx.runc.cli(['spec'], { cwd: dirs.runc, noRoot: true }),
    sysrunc: await fx.sysrunc.cli(['spec'], { cwd: dirs.sysrunc, noRoot: true, env: NO_NODE }),
  };
  assert.deepEqual(out.sysrunc, out.runc);
  assert.deepEqual(readFileSync(path.join(dirs.sysrunc, 'config.json')), readFileSync(path.join(dirs.runc, 'config.json')));
});

test('without Node, start, ps, pause, resume, update, events and kill all work on a sysrunc container', async () => {
  const b = await fx.bundle('nonode-life-sysrunc', ['sleep', '1000']);
  const id = cid(fx.sysrunc, 'nonode-life');
  const created = await fx.sysrunc.cli(['create', '--bundle', b.bundle, id]);
  assert.equal(created.exitCode, 0, created.stderr);
  const steps = [
    ['start', id],
    ['ps', '--format', 'json', id],
    ['pause', id],
    ['resume', id],
    ['update', '--pids-limit', '100', id],
    ['events', '--stats', id],
    ['kill', id, 'KILL'],
  ];
  for (const argv of steps) {
    const out = await fx.sysrunc.cli(argv, { env: NO_NODE });
    assert.equal(out.exitCode, 0, `${argv[0]}: ${out.stderr}`);
  }
  assert.equal(await waitFor('the container to stop', async () => ((await status(fx.sysrunc, id)) === 'stopped' ? 'stopped' : undefined)), 'stopped');
});

test('without Node, create works: the C client (dist/sysrunc-prepare-call) needs no JavaScript runtime', async () => {
  const b = await fx.bundle('nonode-create-sysrunc', ['sleep', '1000']);
  const original = readFileSync(b.config);
  const id = cid(fx.sysrunc, 'nonode-create');
  const out = await fx.sysrunc.cli(['create', '--bundle', b.bundle, id], { env: NO_NODE });
  assert.deepEqual(out, { exitCode: 0, stdout: '', stderr: '' });
  assert.equal(await status(fx.sysrunc, id), 'created');
  assert.deepEqual(readFileSync(b.config), original);
  assert.equal((await fx.sysrunc.cli(['delete', '--force', id], { env: NO_NODE })).exitCode, 0);
  assert.deepEqual((await recordsOnceReleased(fx.manager, (r) => r.id === id)).map((r) => r.id).filter((r) => r === id), []);
});

test('spec in an empty directory writes a config.json byte-identical to runc\'s', async () => {
  const dirs = { runc: emptyDir('spec-runc'), sysrunc: emptyDir('spec-sysrunc') };
  const out = await both((rt) => rt.cli(['spec'], { cwd: dirs[rt.name], noRoot: true }));
  assert.deepEqual([out.sysrunc.exitCode, out.runc.exitCode], [0, 0], out.sysrunc.stderr);
  assert.deepEqual(readFileSync(path.join(dirs.sysrunc, 'config.json')), readFileSync(path.join(dirs.runc, 'config.json')));
});

test('spec --rootless in an empty directory writes a config.json byte-identical to runc\'s', async () => {
  const dirs = { runc: emptyDir('spec-rootless-runc'), sysrunc: emptyDir('spec-rootless-sysrunc') };
  const out = await both((rt) => rt.cli(['spec', '--rootless'], { cwd: dirs[rt.name], noRoot: true }));
  assert.deepEqual([out.sysrunc.exitCode, out.runc.exitCode], [0, 0], out.sysrunc.stderr);
  assert.deepEqual(readFileSync(path.join(dirs.sysrunc, 'config.json')), readFileSync(path.join(dirs.runc, 'config.json')));
});

test('--version: "runc version ", then "commit:", then "spec: ", then a "sysrunc version" line', async () => {
  const out = await fx.sysrunc.cli(['--version'], { noRoot: true });
  assert.equal(out.exitCode, 0, out.stderr);
  const lines = out.stdout.split('\n');
  assert.match(lines[0] ?? '', /^runc version \S/);
  assert.match(lines[1] ?? '', /^commit: ?\S/);
  assert.match(lines[2] ?? '', /^spec: \d+\.\d+\.\d+/);
  const sysruncLine = lines.findIndex((l) => l.startsWith('sysrunc version '));
  assert.ok(sysruncLine > 2, `no "sysrunc version" line after the spec line in:\n${out.stdout}`);
  assert.match(lines[sysruncLine] ?? '', /^sysrunc version \S+$/);
});

test('--version keeps runc\'s own version lines unchanged before its own', async () => {
  const out = await both((rt) => rt.cli(['--version'], { noRoot: true }));
  assert.equal(out.runc.exitCode, 0);
  assert.ok(out.sysrunc.stdout.startsWith(out.runc.stdout), `${out.sysrunc.stdout}\ndoes not start with\n${out.runc.stdout}`);
});

test('--version into a reader that closes early (| head -1) prints no error', () => {
  const r = spawnSync('sh', ['-c', `"${SYSRUNC}" --version | head -1`], { encoding: 'utf8' });
  assert.match(r.stdout, /^runc version \S+\n$/);
  assert.equal(r.stderr, '');
});

test('--help exits 0 and prints runc\'s help', async () => {
  const out = await both((rt) => rt.cli(['--help'], { noRoot: true }));
  assert.equal(out.sysrunc.exitCode, 0, out.sysrunc.stderr);
  assert.equal(out.sysrunc.stdout, out.runc.stdout);
});

const SPELLINGS: ReadonlyArray<[string, (root: string) => string[]]> = [
  ['root-space', (r) => ['--root', r]],
  ['root-equals', (r) => [`--root=${r}`]],
  ['root-single-dash', (r) => ['-root', r]],
];

for (const [name, spelling] of SPELLINGS) {
  test(`${spelling('R').join(' ')}: create, state and delete all use root R`, async () => {
    const b = await fx.bundle(`${name}-sysrunc`, ['sleep', '1000']);
    const id = cid(fx.sysrunc, name);
    const flags = spelling(fx.sysrunc.root);
    const created = await fx.sysrunc.cli([...flags, 'create', '--bundle', b.bundle, id], { noRoot: true });
    assert.equal(created.exitCode, 0, created.stderr);
    assert.equal(await status(fx.sysrunc, id, flags), 'created');
    assert.deepEqual(
      (await managerRecords(fx.manager)).filter((r) => r.id === id).map((r) => r.runtimeRoot),
      [fx.sysrunc.root],
    );
    const deleted = await fx.sysrunc.cli([...flags, 'delete', '--force', id], { noRoot: true });
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    assert.equal(await status(fx.sysrunc, id), undefined);
    assert.deepEqual((await recordsOnceReleased(fx.manager, (r) => r.id === id)).filter((r) => r.id === id), []);
  });
}

test('daemon.json runtimeArgs before the shim\'s flags (--debug --root R --log L --log-format json state ID) work like runc', async () => {
  const out = await both(async (rt) => {
    const b = await fx.bundle(`runtimeargs-state-${rt.name}`, ['sleep', '1000']);
    const created = await rt.cli(['create', '--bundle', b.bundle, cid(rt, 'runtimeargs-state')]);
    assert.equal(created.exitCode, 0, created.stderr);
    const log = path.join(fx.work, `runtimeargs-state-${rt.name}.log`);
    return rt.cli(['--debug', '--root', rt.root, '--log', log, '--log-format', 'json', 'state', cid(rt, 'runtimeargs-state')], { noRoot: true });
  });
  assert.equal(out.sysrunc.exitCode, 0, out.sysrunc.stderr);
  assert.deepEqual(comparableState(out.sysrunc.stdout), comparableState(out.runc.stdout));
});

test('daemon.json runtimeArgs before the shim\'s flags: create and delete use the root and log given', async () => {
  const b = await fx.bundle('runtimeargs-create-sysrunc', ['sleep', '1000']);
  const id = cid(fx.sysrunc, 'runtimeargs-create');
  const log = path.join(fx.work, 'runtimeargs-create.log');
  const globals = ['--debug', '--root', fx.sysrunc.root, '--log', log, '--log-format', 'json'];
  const created = await fx.sysrunc.cli([...globals, 'create', '--bundle', b.bundle, '--pid-file', path.join(fx.work, `${id}.pid`), id], { noRoot: true });
  assert.equal(created.exitCode, 0, created.stderr);
  assert.equal(await status(fx.sysrunc, id), 'created');
  assert.deepEqual((await managerRecords(fx.manager)).filter((r) => r.id === id).map((r) => r.runtimeRoot), [fx.sysrunc.root]);
  // runc --debug writes JSON debug lines to the log: the flags reached it in their order.
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string });
  assert.ok(lines.some((l) => l.level === 'debug'), 'runc --debug wrote no debug line to the json log');
  const deleted = await fx.sysrunc.cli([...globals, 'delete', '--force', id], { noRoot: true });
  assert.equal(deleted.exitCode, 0, deleted.stderr);
  assert.deepEqual((await recordsOnceReleased(fx.manager, (r) => r.id === id)).filter((r) => r.id === id), []);
});

test('kill --all signals every process of the container, like runc', async () => {
  const out = await both(async (rt) => {
    const b = await fx.bundle(`killall-${rt.name}`, ['sh', '-c', 'sleep 1000 & sleep 1000 & wait']);
    const id = cid(rt, 'killall');
    for (const argv of [['create', '--bundle', b.bundle, id], ['start', id]]) {
      const step = await rt.cli(argv);
      assert.equal(step.exitCode, 0, `${rt.name} ${argv[0]}: ${step.stderr}`);
    }
    return rt.cli(['kill', '--all', id, 'KILL']);
  });
  assert.equal(out.runc.exitCode, 0, out.runc.stderr);
  assert.deepEqual(out.sysrunc, out.runc);
  const id = cid(fx.sysrunc, 'killall');
  assert.equal(await waitFor('the container to stop', async () => ((await status(fx.sysrunc, id)) === 'stopped' ? 'stopped' : undefined)), 'stopped');
});

test('an unknown subcommand gets runc\'s error and exit code', async () => {
  const out = await both((rt) => rt.cli(['bogus-subcommand']));
  assert.notEqual(out.runc.exitCode, 0);
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  assert.equal(out.sysrunc.stdout, out.runc.stdout);
  assert.equal(untimed(out.sysrunc.stderr), untimed(out.runc.stderr));
});

test('a process exec\'d into a system container as root gets the capabilities its init got', async () => {
  const b = await fx.bundle('exec-caps-sysrunc', ['sleep', '1000']);
  const id = cid(fx.sysrunc, 'exec-caps');
  assert.equal((await fx.sysrunc.cli(['run', '-d', '--bundle', b.bundle, id])).exitCode, 0);
  const processFile = path.join(fx.work, 'exec-caps-process.json');
  // What dockerd sends: Docker's default capability list, no CAP_SYS_ADMIN.
  const docker = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID'];
  writeFileSync(processFile, JSON.stringify({ args: ['grep', 'CapEff', '/proc/self/status'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'], capabilities: { bounding: docker, effective: docker, permitted: docker } }));
  const init = await fx.sysrunc.cli(['exec', id, 'grep', 'CapEff', '/proc/1/status']);
  const exec = await fx.sysrunc.cli(['exec', '--process', processFile, id]);
  assert.equal(exec.exitCode, 0, exec.stderr);
  assert.equal(exec.stdout.trim(), init.stdout.trim());
  await fx.sysrunc.cli(['delete', '--force', id]);
});
