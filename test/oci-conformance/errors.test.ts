// Bad input: sysrunc refuses it with one clear line on stderr naming what is wrong, exit code 1,
// and nothing changed anywhere: not a file of the bundle (rootfs included), no manager record, no
// mount and no run dir under the manager's run dir, no container in runc's root.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { editedBundle, sleepingBundle, startFixture, type Fixture, type Outcome, type Runtime } from './fixture.ts';
import { deleteAndSettle, managerRecords, mountsUnder, recordsOnceReleased, runDirEntries, snapshotTree } from './helpers/host-state.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('errors');
});
after(async () => fx.dispose());

// Distinct ids: runc's default cgroup path is /<id>, shared by namesakes in different roots.
const cid = (rt: Runtime, name: string) => `${name}-${rt.name}`;

async function containerStatus(rt: Runtime, id: string): Promise<string | undefined> {
  const out = await rt.cli(['state', id]);
  return out.exitCode === 0 ? (JSON.parse(out.stdout) as { status: string }).status : undefined;
}

/** The one stderr line, without "sysrunc: " and the newline; fails unless it is exactly that. */
function oneErrorLine(out: Outcome): string {
  assert.match(out.stderr, /^sysrunc: [^\n]+\n$/, `not one "sysrunc: <message>" line on stderr: ${JSON.stringify(out.stderr)}`);
  return out.stderr.slice('sysrunc: '.length, -1);
}

interface Refusal {
  /** The sysrunc argv after `--root <root>`. */
  readonly argv: string[];
  /** What may not change: the bundle directory, or whatever is at the bundle path. */
  readonly bundle: string;
  /** Words the message must contain: the path, flag or annotation at fault. */
  readonly names: readonly string[];
  readonly env?: Record<string, string>;
  readonly id?: string;
}

/** Runs a create sysrunc must refuse and checks the refusal left everything as it was. */
async function assertRefused(r: Refusal): Promise<string> {
  const before = snapshotTree(r.bundle);
  const out = await fx.sysrunc.cli(r.argv, r.env === undefined ? {} : { env: r.env });
  assert.equal(out.exitCode, 1, `exit code; stderr: ${out.stderr}`);
  const message = oneErrorLine(out);
  for (const name of r.names) assert.ok(message.includes(name), `message does not name ${JSON.stringify(name)}: ${message}`);
  assert.equal(out.stdout, '');
  assert.deepEqual(snapshotTree(r.bundle), before, 'the bundle changed');
  assert.deepEqual(await recordsOnceReleased(fx.manager), [], 'a manager record was left');
  assert.deepEqual(mountsUnder(fx.manager.runDir), [], 'a mount was left under the manager run dir');
  assert.deepEqual(runDirEntries(fx.manager), [], 'a container run dir was left');
  if (r.id !== undefined) assert.equal(await containerStatus(fx.sysrunc, r.id), undefined, 'runc has the container');
  return message;
}

const create = (bundle: string, id: string, ...flags: string[]) => ['create', ...flags, '--bundle', bundle, id];

test('missing bundle directory: refused, naming the path', async () => {
  const bundle = path.join(fx.work, 'no-such-bundle');
  const id = cid(fx.sysrunc, 'nobundle');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle], id });
});

test('bundle path is a file: refused, naming the path', async () => {
  const bundle = path.join(fx.work, 'bundle-is-a-file');
  writeFileSync(bundle, 'not a directory\n');
  const id = cid(fx.sysrunc, 'bundlefile');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle], id });
});

test('missing config.json: refused, naming the bundle and config.json', async () => {
  const bundle = await sleepingBundle(fx, 'no-config');
  rmSync(path.join(bundle, 'config.json'));
  const id = cid(fx.sysrunc, 'noconfig');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle, 'config.json'], id });
});

test('config.json is a directory: refused, naming the bundle and config.json', async () => {
  const bundle = await sleepingBundle(fx, 'config-is-dir');
  rmSync(path.join(bundle, 'config.json'));
  mkdirSync(path.join(bundle, 'config.json'));
  const id = cid(fx.sysrunc, 'configdir');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle, 'config.json'], id });
});

test('config.json is a dangling symlink: refused, naming the bundle and config.json', async () => {
  const bundle = await sleepingBundle(fx, 'config-dangling');
  rmSync(path.join(bundle, 'config.json'));
  symlinkSync('nowhere.json', path.join(bundle, 'config.json'));
  const id = cid(fx.sysrunc, 'configdangling');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle, 'config.json'], id });
});

test('config.json is not JSON: refused, naming config.json and saying it is not valid JSON', async () => {
  const bundle = await sleepingBundle(fx, 'config-malformed');
  writeFileSync(path.join(bundle, 'config.json'), '{"ociVersion": "1.0.2", "process": {\n');
  const id = cid(fx.sysrunc, 'malformed');
  const message = await assertRefused({ argv: create(bundle, id), bundle, names: [bundle, 'config.json'], id });
  assert.match(message, /JSON/);
});

test('config.json is JSON but not an OCI config (process.user.uid "x"): refused, naming the JSON path', async () => {
  const bundle = await editedBundle(fx, 'config-not-oci', (spec) => {
    (spec.process as { user: { uid: unknown } }).user.uid = 'x';
  });
  const id = cid(fx.sysrunc, 'notoci');
  await assertRefused({ argv: create(bundle, id), bundle, names: [bundle, '/process/user/uid'], id });
});

test('unknown create flag --bogus: refused with "flag provided but not defined: -bogus"', async () => {
  const bundle = await sleepingBundle(fx, 'flag-bogus');
  const id = cid(fx.sysrunc, 'bogusflag');
  await assertRefused({ argv: create(bundle, id, '--bogus'), bundle, names: ['flag provided but not defined: -bogus'], id });
});

test('missing container id: refused, saying create needs exactly one argument', async () => {
  const bundle = await sleepingBundle(fx, 'no-id');
  await assertRefused({ argv: ['create', '--bundle', bundle], bundle, names: ['"create" requires exactly 1 argument'] });
});

test('invalid container id ../x: refused, naming the id', async () => {
  const bundle = await sleepingBundle(fx, 'bad-id');
  await assertRefused({ argv: create(bundle, '../x'), bundle, names: ['invalid container id', '../x'] });
});

test('create with a runtime that does not exist: refused, naming the runtime', async () => {
  const bundle = await sleepingBundle(fx, 'no-runtime');
  const id = cid(fx.sysrunc, 'noruntime');
  await assertRefused({ argv: create(bundle, id), bundle, names: ['/nonexistent/runc'], env: { SYSRUNC_RUNTIME: '/nonexistent/runc' }, id });
});

test('a pass-through command (state) with a runtime that does not exist: one error line naming the runtime, exit 1', async () => {
  const out = await fx.sysrunc.cli(['state', 'anything'], { env: { SYSRUNC_RUNTIME: '/nonexistent/runc' } });
  assert.equal(out.exitCode, 1);
  assert.ok(oneErrorLine(out).includes('/nonexistent/runc'), out.stderr);
});

test('manager not running: refused, naming the socket and how to start the manager', async () => {
  const bundle = await sleepingBundle(fx, 'no-manager');
  const id = cid(fx.sysrunc, 'nomanager');
  const socket = path.join(fx.work, 'no-such-mgr.sock');
  const message = await assertRefused({ argv: create(bundle, id), bundle, names: [socket], env: { SYSRUNC_MGR_SOCKET: socket }, id });
  assert.match(message, /start it with .*sysrunc-mgr/);
});

test('unknown sysrunc annotation io.sysrunc.nosuch: refused, naming the annotation', async () => {
  const bundle = await editedBundle(fx, 'annotation-unknown', (spec) => {
    spec.annotations = { 'io.sysrunc.nosuch': '1' };
  });
  const id = cid(fx.sysrunc, 'annunknown');
  await assertRefused({ argv: create(bundle, id), bundle, names: ['io.sysrunc.nosuch'], id });
});

test('malformed io.sysrunc.userns.size "abc": refused, naming the annotation and the value', async () => {
  const bundle = await editedBundle(fx, 'annotation-size', (spec) => {
    spec.annotations = { 'io.sysrunc.userns.size': 'abc' };
  });
  const id = cid(fx.sysrunc, 'annsize');
  await assertRefused({ argv: create(bundle, id), bundle, names: ['io.sysrunc.userns.size', 'abc'], id });
});

test("io.sysrunc.userns.size over the manager's --max-subid-size: refused, naming the annotation and the bound", async () => {
  // The fixture's manager has the default bound: 16 x its default size of 65536.
  const bundle = await editedBundle(fx, 'annotation-over-bound', (spec) => {
    spec.annotations = { 'io.sysrunc.userns.size': String(65536 * 32) };
  });
  const id = cid(fx.sysrunc, 'annoverbound');
  await assertRefused({ argv: create(bundle, id), bundle, names: ['io.sysrunc.userns.size', '2097152', '--max-subid-size'], id });
});

test('unknown runtime flag --sysrunc-nosuch: refused, naming the flag', async () => {
  const bundle = await sleepingBundle(fx, 'flag-unknown');
  const id = cid(fx.sysrunc, 'flagunknown');
  await assertRefused({ argv: ['--sysrunc-nosuch=1', ...create(bundle, id)], bundle, names: ['runtime flag --sysrunc-nosuch'], id });
});

/** containerd's rule: the msg of the last line whose level is "error". */
function containerdMessage(log: string): string | undefined {
  const errors = log
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level?: unknown; msg?: unknown })
    .filter((entry) => entry.level === 'error');
  const last = errors.at(-1)?.msg;
  return typeof last === 'string' ? last : undefined;
}

test('--log F --log-format json: the error is appended to F as a JSON line that containerd reports', async () => {
  const bundle = await sleepingBundle(fx, 'log-json');
  rmSync(path.join(bundle, 'config.json'));
  const log = path.join(fx.work, 'log-json.log');
  const earlier = `${JSON.stringify({ level: 'info', msg: 'an earlier line', time: new Date().toISOString() })}\n`;
  writeFileSync(log, earlier);
  const id = cid(fx.sysrunc, 'logjson');
  const out = await fx.sysrunc.cli(['--log', log, '--log-format', 'json', ...create(bundle, id)]);
  assert.equal(out.exitCode, 1);
  oneErrorLine(out);
  const text = readFileSync(log, 'utf8');
  assert.ok(text.startsWith(earlier), `the log was not appended to:\n${text}`);
  const added = text.slice(earlier.length).split('\n').filter(Boolean);
  assert.equal(added.length, 1, text);
  const entry = JSON.parse(added[0] as string) as Record<string, unknown>;
  assert.deepEqual(Object.keys(entry).sort(), ['level', 'msg', 'time']);
  assert.equal(entry.level, 'error');
  assert.ok(!Number.isNaN(Date.parse(String(entry.time))), `time ${String(entry.time)}`);
  assert.equal(containerdMessage(text), out.stderr.trimEnd());
});

test('--log F --log-format json: a bad flag is also logged as the last error line', async () => {
  const bundle = await sleepingBundle(fx, 'log-json-flag');
  const log = path.join(fx.work, 'log-json-flag.log');
  const id = cid(fx.sysrunc, 'logjsonflag');
  const out = await fx.sysrunc.cli(['--log', log, '--log-format', 'json', ...create(bundle, id, '--bogus')]);
  assert.equal(out.exitCode, 1);
  oneErrorLine(out);
  assert.equal(containerdMessage(readFileSync(log, 'utf8')), out.stderr.trimEnd());
});

test('--log F in the default text format: the error is appended as a logrus-style line', async () => {
  const bundle = await sleepingBundle(fx, 'log-text');
  rmSync(path.join(bundle, 'config.json'));
  const log = path.join(fx.work, 'log-text.log');
  writeFileSync(log, 'time="2020-01-01T00:00:00Z" level=info msg="an earlier line"\n');
  const id = cid(fx.sysrunc, 'logtext');
  const out = await fx.sysrunc.cli(['--log', log, ...create(bundle, id)]);
  assert.equal(out.exitCode, 1);
  oneErrorLine(out);
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.equal(lines[0], 'time="2020-01-01T00:00:00Z" level=info msg="an earlier line"');
  assert.match(lines[1] as string, /^time="\d{4}-\d\d-\d\dT[^"]+" level=error msg=".*"$/);
  assert.ok((lines[1] as string).endsWith(` msg=${JSON.stringify(out.stderr.trimEnd())}`), lines[1]);
});

/** The wording runc itself uses for a second create of an existing id (its msg, without "runc create failed: "). */
async function runcExistsWording(): Promise<string> {
  const bundle = await sleepingBundle(fx, 'exists-runc');
  const id = cid(fx.runc, 'exists');
  const first = await fx.runc.cli(create(bundle, id));
  assert.equal(first.exitCode, 0, first.stderr);
  const second = await fx.runc.cli(create(bundle, id));
  assert.equal(second.exitCode, 1);
  const msg = /msg="(?:runc create failed: )?([^"]+)"/.exec(second.stderr)?.[1];
  assert.ok(msg !== undefined, second.stderr);
  await fx.runc.cli(['delete', '--force', id]);
  return msg;
}

/** A started sysrunc container, and what must stay as it is while a second create of its id fails. */
async function runningSysruncContainer(name: string) {
  const bundle = await sleepingBundle(fx, `${name}-first`);
  const id = cid(fx.sysrunc, name);
  for (const argv of [create(bundle, id), ['start', id]]) {
    const out = await fx.sysrunc.cli(argv);
    assert.equal(out.exitCode, 0, `${argv[0]}: ${out.stderr}`);
  }
  const mounts = mountsUnder(path.join(fx.manager.runDir, 'containers', id));
  assert.notDeepEqual(mounts, [], 'the first container has no mounts to watch');
  return {
    id,
    bundle,
    snapshot: async () => ({
      status: await containerStatus(fx.sysrunc, id),
      records: await managerRecords(fx.manager),
      mounts: mountsUnder(path.join(fx.manager.runDir, 'containers', id)),
      runDirs: runDirEntries(fx.manager),
      bundle: snapshotTree(bundle),
    }),
  };
}

test('create of an id that exists (another bundle): refused, the first container and both bundles untouched', async () => {
  const first = await runningSysruncContainer('exists');
  try {
    const before = await first.snapshot();
    assert.equal(before.status, 'running');
    const bundle = await sleepingBundle(fx, 'exists-second');
    const secondBefore = snapshotTree(bundle);
    const out = await fx.sysrunc.cli(create(bundle, first.id));
    assert.equal(out.exitCode, 1);
    assert.ok(oneErrorLine(out).includes(first.id), out.stderr);
    assert.deepEqual(snapshotTree(bundle), secondBefore, 'the second bundle changed');
    assert.deepEqual(await first.snapshot(), before, 'the first container changed');
  } finally {
    await deleteAndSettle(fx, first.id);
  }
});

test('create of an id that exists, from the same bundle: refused, the first container and its bundle untouched', async () => {
  const first = await runningSysruncContainer('exists-same');
  try {
    const before = await first.snapshot();
    const out = await fx.sysrunc.cli(create(first.bundle, first.id));
    assert.equal(out.exitCode, 1);
    assert.ok(oneErrorLine(out).includes(first.id), out.stderr);
    assert.deepEqual(await first.snapshot(), before, 'the first container changed');
  } finally {
    await deleteAndSettle(fx, first.id);
  }
});

test('create of an id that exists: the message says it in the words runc uses', async () => {
  const wording = await runcExistsWording();
  const first = await runningSysruncContainer('exists-wording');
  try {
    const out = await fx.sysrunc.cli(create(await sleepingBundle(fx, 'exists-wording-second'), first.id));
    assert.equal(out.exitCode, 1);
    const message = oneErrorLine(out);
    assert.ok(message.includes(wording), `"${message}" does not say "${wording}" as runc does`);
  } finally {
    await deleteAndSettle(fx, first.id);
  }
});
