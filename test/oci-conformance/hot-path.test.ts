// The hot path: create, run, exec and delete never start Node; the manager releases a container on
// its own once runc no longer has it, without a release call from anyone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFixture, type Fixture } from './fixture.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';
import { bins } from '../rig/paths.ts';
import { SYSRUNC } from '../helpers/manager.ts';

let fx: Fixture;

before(async () => {
  // The periodic sweep (a backstop) would release gone containers too: an hour apart, it never runs
  // during this file, so a release seen here is the container watch's (src/manager/container-watch.ts).
  fx = await startFixture('hot', ['--sweep-interval', String(3_600_000)]);
});
after(async () => fx.dispose());

/** The manager's records, asked without a sweep (a sweep would release what is gone by itself). */
async function recordIds(): Promise<string[]> {
  const client = await ManagerClient.connect(fx.manager.socket);
  try {
    return (await client.call('list', {})).containers.map((c) => c.id);
  } finally {
    client.close();
  }
}

/** A bound against hanging only: with the sweep an hour away, nothing else releases in time. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${what}; the manager's log ends:\n${fx.manager.log().split('\n').slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs the launcher (dist/sysrunc) with a `node` first on PATH that only leaves a mark: had the launcher started
 * Node for any of these calls (it looks for node on PATH first), the mark would be there.
 */
function runWithMarkedNode(argv: readonly string[]): void {
  const dir = path.join(fx.work, 'fake-node');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'node'), `#!/bin/sh\necho "$@" >> ${path.join(dir, 'ran')}\nexit 99\n`, { mode: 0o755 });
  // Files, not pipes: a created container's init keeps its stdio open until it exits.
  const errFile = path.join(dir, 'stderr');
  const err = openSync(errFile, 'w');
  const r = spawnSync(SYSRUNC, ['--root', fx.sysrunc.root, ...argv], {
    env: { ...process.env, ...fx.manager.env, PATH: `${dir}:${process.env.PATH ?? ''}` },
    cwd: fx.work,
    stdio: ['ignore', 'ignore', err],
  });
  closeSync(err);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${readFileSync(errFile, 'utf8')}`);
}

test('create, start, exec and delete of a system container start no Node process', async () => {
  const b = await fx.bundle('nonode', ['sleep', '1000']);
  const id = `nonode-${process.pid}`;
  for (const argv of [['create', '--bundle', b.bundle, id], ['start', id], ['exec', id, 'true'], ['delete', '--force', id]]) runWithMarkedNode(argv);
  assert.equal(existsSync(path.join(fx.work, 'fake-node', 'ran')), false, 'the launcher ran node');
});

test('runc run in the foreground: the manager releases the container on its own once it exits', async () => {
  const b = await fx.bundle('self-release', ['true']);
  const out = await fx.sysrunc.cli(['run', '--bundle', b.bundle, 'self-release']);
  assert.equal(out.exitCode, 0, out.stderr);
  await eventually('the record of self-release is gone', async () => !(await recordIds()).includes('self-release'));
});

test('a container deleted by plain runc (no sysrunc call at all) is released by the manager on its own', async () => {
  const b = await fx.bundle('runc-deleted', ['sleep', '1000']);
  const created = await fx.sysrunc.cli(['create', '--bundle', b.bundle, 'runc-deleted']);
  assert.equal(created.exitCode, 0, created.stderr);
  assert.ok((await recordIds()).includes('runc-deleted'));
  const r = spawnSync(bins.runc, ['--root', fx.sysrunc.root, 'delete', '--force', 'runc-deleted'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  await eventually('the record of runc-deleted is gone', async () => !(await recordIds()).includes('runc-deleted'));
});

test('a create that runc rejects is released as soon as the call ends', async () => {
  const b = await fx.bundle('rejected', ['/no/such/executable']);
  const out = await fx.sysrunc.cli(['create', '--bundle', b.bundle, 'rejected']);
  assert.notEqual(out.exitCode, 0);
  await eventually('the record of rejected is gone', async () => !(await recordIds()).includes('rejected'));
});
