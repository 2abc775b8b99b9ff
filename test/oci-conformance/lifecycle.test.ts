// create, start, state, ps, pause, resume, exec, update, events, kill, delete: sysrunc answers
// each exactly as runc does on the same bundle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { comparableState, startFixture, type Fixture, type Runtime } from './fixture.ts';
import { assertValidState } from '../helpers/schema.ts';

let fx: Fixture;
const bundles = new Map<string, string>();

before(async () => {
  fx = await startFixture('lifecycle');
  for (const rt of [fx.runc, fx.sysrunc]) {
    const b = await fx.bundle(`long-${rt.name}`, ['sleep', '1000']);
    bundles.set(rt.name, b.bundle);
  }
});
after(async () => fx.dispose());

// Distinct ids: runc's default cgroup path is /<id>, shared by namesakes in different roots.
const cid = (rt: Runtime) => `c1-${rt.name}`;

async function both(step: (rt: Runtime) => Promise<{ exitCode: number; stdout: string; stderr: string }>) {
  const [r, s] = [await step(fx.runc), await step(fx.sysrunc)];
  return { runc: r, sysrunc: s };
}

test('create: same exit code and a digits-only pid file', async () => {
  const out = await both((rt) =>
    rt.cli(['create', '--bundle', bundles.get(rt.name) as string, '--pid-file', path.join(fx.work, `${rt.name}.pid`), cid(rt)]),
  );
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode, out.sysrunc.stderr);
  assert.equal(out.sysrunc.exitCode, 0);
  assert.match(readFileSync(path.join(fx.work, 'sysrunc.pid'), 'utf8'), /^\d+$/);
});

test('state after create: status created, schema-valid, same document shape as runc', async () => {
  const out = await both((rt) => rt.cli(['state', cid(rt)]));
  assert.equal(out.sysrunc.exitCode, 0);
  const doc = JSON.parse(out.sysrunc.stdout) as unknown;
  assertValidState(doc);
  assert.equal((doc as { status: string }).status, 'created');
  assert.deepEqual(comparableState(out.sysrunc.stdout), comparableState(out.runc.stdout));
});

test('start: same exit code and status running', async () => {
  const out = await both((rt) => rt.cli(['start', cid(rt)]));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  const state = await fx.sysrunc.cli(['state', cid(fx.sysrunc)]);
  assert.equal(JSON.parse(state.stdout).status, 'running');
});

test('ps --format json: a JSON array of pids, as runc prints it', async () => {
  const out = await both((rt) => rt.cli(['ps', '--format', 'json', cid(rt)]));
  assert.equal(out.sysrunc.exitCode, 0);
  const pids = JSON.parse(out.sysrunc.stdout) as unknown[];
  assert.ok(Array.isArray(pids) && pids.length === (JSON.parse(out.runc.stdout) as unknown[]).length);
  assert.ok(pids.every((p) => Number.isInteger(p)));
});

test('exec --process: runs in the container with the same output as runc', async () => {
  const processFile = path.join(fx.work, 'process.json');
  writeFileSync(processFile, JSON.stringify({ args: ['sh', '-c', 'echo exec-ok; exit 4'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] }));
  const out = await both((rt) => rt.cli(['exec', '--process', processFile, cid(rt)]));
  assert.equal(out.sysrunc.exitCode, 4);
  assert.equal(out.sysrunc.stdout, out.runc.stdout);
});

test('exec with args: runs with the same output as runc', async () => {
  const out = await both((rt) => rt.cli(['exec', cid(rt), 'echo', 'hello']));
  assert.deepEqual([out.sysrunc.exitCode, out.sysrunc.stdout], [out.runc.exitCode, out.runc.stdout]);
});

test('pause and resume: status paused, then running', async () => {
  const paused = await both((rt) => rt.cli(['pause', cid(rt)]));
  assert.equal(paused.sysrunc.exitCode, paused.runc.exitCode);
  assert.equal(JSON.parse((await fx.sysrunc.cli(['state', cid(fx.sysrunc)])).stdout).status, 'paused');
  const resumed = await both((rt) => rt.cli(['resume', cid(rt)]));
  assert.equal(resumed.sysrunc.exitCode, resumed.runc.exitCode);
  assert.equal(JSON.parse((await fx.sysrunc.cli(['state', cid(fx.sysrunc)])).stdout).status, 'running');
});

test('update --resources - reads LinuxResources from stdin like runc', async () => {
  const resources = JSON.stringify({ pids: { limit: 200 } });
  const out = await both((rt) => rt.cli(['update', '--resources', '-', cid(rt)], { input: resources }));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode, out.sysrunc.stderr);
});

test('events --stats prints one JSON object like runc', async () => {
  const out = await both((rt) => rt.cli(['events', '--stats', cid(rt)]));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  assert.equal(JSON.parse(out.sysrunc.stdout).type, JSON.parse(out.runc.stdout).type);
});

test('list --format=json lists the container with the same fields', async () => {
  const out = await both((rt) => rt.cli(['list', '--format=json']));
  const s = JSON.parse(out.sysrunc.stdout) as Array<Record<string, unknown>>;
  const r = JSON.parse(out.runc.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(s.map((c) => Object.keys(c).sort()), r.map((c) => Object.keys(c).sort()));
  assert.deepEqual(s.map((c) => c.status), r.map((c) => c.status));
});

test('kill with a signal name and with a number both work', async () => {
  const byName = await both((rt) => rt.cli(['kill', cid(rt), 'USR1']));
  assert.equal(byName.sysrunc.exitCode, byName.runc.exitCode);
  const byNumber = await both((rt) => rt.cli(['kill', cid(rt), '9']));
  assert.equal(byNumber.sysrunc.exitCode, byNumber.runc.exitCode);
  for (let i = 0; i < 100; i++) {
    if (JSON.parse((await fx.sysrunc.cli(['state', cid(fx.sysrunc)])).stdout).status === 'stopped') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const state = await fx.sysrunc.cli(['state', cid(fx.sysrunc)]);
  assertValidState(JSON.parse(state.stdout));
  assert.equal(JSON.parse(state.stdout).status, 'stopped');
});

test('delete: same exit code, and the bundle was never written to (config.json as runc\'s copy, no backup file)', async () => {
  const out = await both((rt) => rt.cli(['delete', cid(rt)]));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  assert.equal(out.sysrunc.exitCode, 0);
  const config = (rt: string) => readFileSync(path.join(bundles.get(rt) as string, 'config.json'), 'utf8');
  assert.equal(config('sysrunc'), config('runc'));
  assert.deepEqual(readdirSync(bundles.get('sysrunc') as string).sort(), readdirSync(bundles.get('runc') as string).sort());
});

test('delete of a container that does not exist fails like runc, with "does not exist"', async () => {
  const out = await both((rt) => rt.cli(['delete', 'nosuch']));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  assert.match(out.sysrunc.stderr, /does not exist/);
});

test('state of a container that does not exist fails like runc', async () => {
  const out = await both((rt) => rt.cli(['state', 'nosuch']));
  assert.equal(out.sysrunc.exitCode, out.runc.exitCode);
  assert.equal(out.sysrunc.stderr, out.runc.stderr);
});
