// state.bundle is the caller's bundle (runtime spec: "the absolute path to the container's bundle
// directory"), in `runc state`, `runc list` and the state OCI hooks read on stdin, although runc
// reads sysrunc's prepared config; and the caller's bundle is never written to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { startFixture, type Fixture } from './fixture.ts';

const ID = 'state-bundle-c1';
const HOOKS = ['createRuntime', 'prestart', 'poststart'] as const;
let fx: Fixture;
let bundle = '';
let before_: { config: string; entries: string[] };
let sharedMount = '';
const hookOutput = (hook: string) => path.join(fx.work, `hook-${hook}.json`);
const snapshot = () => ({ config: readFileSync(path.join(bundle, 'config.json'), 'utf8'), entries: readdirSync(bundle).sort() });

before(async () => {
  fx = await startFixture('state-bundle');
  // On a shared mount, as under systemd (where / is shared): a mount made next to the bundle in
  // runc's namespace would otherwise propagate back to the host's.
  const shared = path.join(fx.work, 'shared');
  mkdirSync(shared);
  await execa('mount', ['-t', 'tmpfs', 'state-bundle', shared]);
  await execa('mount', ['--make-shared', shared]);
  sharedMount = shared;
  const b = await fx.bundle('shared/caller-bundle', ['sleep', '1000']);
  bundle = realpathSync(b.bundle);
  const spec = JSON.parse(readFileSync(b.config, 'utf8')) as Record<string, unknown>;
  // Each hook saves the state it got on stdin.
  spec.hooks = Object.fromEntries(HOOKS.map((hook) => [hook, [{ path: '/bin/sh', args: ['sh', '-c', `cat >${hookOutput(hook)}`] }]]));
  writeFileSync(b.config, `${JSON.stringify(spec, null, 2)}\n`);
  before_ = snapshot();
  const created = await fx.sysrunc.cli(['create', '--bundle', bundle, ID]);
  assert.equal(created.exitCode, 0, created.stderr);
  const started = await fx.sysrunc.cli(['start', ID]);
  assert.equal(started.exitCode, 0, started.stderr);
});
after(async () => {
  // runc delete needs no bundle: the tmpfs can go first, so that dispose removes a plain directory.
  if (sharedMount !== '') await execa('umount', ['-l', sharedMount], { reject: false });
  await fx.dispose();
});

test('runc state through sysrunc names the caller\'s bundle', async () => {
  const out = await fx.sysrunc.cli(['state', ID]);
  assert.equal(out.exitCode, 0, out.stderr);
  assert.equal((JSON.parse(out.stdout) as { bundle: string }).bundle, bundle);
});

test('runc list through sysrunc names the caller\'s bundle', async () => {
  const out = await fx.sysrunc.cli(['list', '--format', 'json']);
  assert.equal(out.exitCode, 0, out.stderr);
  const entry = (JSON.parse(out.stdout) as Array<{ id: string; bundle: string }>).find((c) => c.id === ID);
  assert.equal(entry?.bundle, bundle);
});

for (const hook of HOOKS) {
  test(`a ${hook} hook gets the caller's bundle in the state on its stdin`, () => {
    const state = JSON.parse(readFileSync(hookOutput(hook), 'utf8')) as { id: string; bundle: string };
    assert.equal(state.id, ID);
    assert.equal(state.bundle, bundle);
  });
}

test('runc ran the prepared config, not the caller\'s: the container is in a user namespace the caller\'s config does not ask for', async () => {
  const callerSpec = JSON.parse(before_.config) as { linux?: { namespaces?: Array<{ type: string }> } };
  assert.ok(!(callerSpec.linux?.namespaces ?? []).some((ns) => ns.type === 'user'), 'the caller\'s config has no user namespace');
  const out = await fx.sysrunc.cli(['state', ID]);
  assert.equal(out.exitCode, 0, out.stderr);
  const { pid } = JSON.parse(out.stdout) as { pid: number };
  const uidMap = readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(uidMap[0], 0, 'container root is uid 0 inside');
  assert.notEqual(uidMap[1], 0, `container root is not host root: uid_map ${uidMap.join(' ')}`);
});

test('the caller\'s bundle is unchanged: same config.json bytes, no file added or removed', () => {
  assert.deepEqual(snapshot(), before_);
});

test('the prepared config is bound over the caller\'s in runc\'s mount namespace only, never on the host', () => {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.doesNotMatch(mountinfo, new RegExp(` ${bundle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/config\\.json `));
});

test('after delete the caller\'s bundle is still unchanged', async () => {
  const out = await fx.sysrunc.cli(['delete', '--force', ID]);
  assert.equal(out.exitCode, 0, out.stderr);
  assert.deepEqual(snapshot(), before_);
});
