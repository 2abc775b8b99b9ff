// create and run through the C client (dist/sysrunc-prepare-call) and a real manager's
// prepareCall: the manager parses the client's argv, resolves its relative paths against the
// client's working directory and answers what bin/sysrunc needs, or the error in the call's log
// format. (The other create tests of this suite go through it too, via bin/sysrunc.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { runToFiles, startFixture, type Fixture } from './fixture.ts';
import { managerRecords, recordsOnceReleased } from './helpers/host-state.ts';

const CLIENT = path.join(REPO_ROOT, 'dist', 'sysrunc-prepare-call');
let fx: Fixture;

before(async () => {
  fx = await startFixture('prepare-call');
});
after(async () => fx.dispose());

function client(argv: readonly string[], env: Record<string, string> = {}) {
  return runToFiles(CLIENT, [fx.manager.socket, '--root', fx.sysrunc.root, ...argv], { env: { ...process.env, ...env }, cwd: fx.work, input: undefined, dir: fx.work });
}

test('the C client\'s create: relative --bundle and --console-socket are resolved against its cwd, and stdout has the lines bin/sysrunc reads', async () => {
  const name = 'rel bundle "q" é';
  const b = await fx.bundle(name, ['sleep', '1000']);
  // The process that would become runc: once it is gone without runc having the container, the manager releases it.
  const caller = spawn('sleep', ['1000'], { stdio: 'ignore' });
  try {
    const out = await client(['create', '--bundle', name, '--console-socket', 'console.sock', 'prepare-call-rel'], { SYSRUNC_CALLER_PID: String(caller.pid) });
    assert.equal(out.exitCode, 0, out.stderr);
    const [prepared = '', consoleSocket, cleanup, callerBundle, end] = out.stdout.split('\n');
    assert.deepEqual({ consoleSocket, callerBundle, end }, { consoleSocket: path.join(fx.work, name, 'console.sock'), callerBundle: path.join(fx.work, name), end: '' });
    assert.match(cleanup ?? '', /^(sync|async)$/);
    assert.ok(existsSync(path.join(prepared, 'config.json')), `no prepared config in ${prepared}`);
    const record = (await managerRecords(fx.manager)).find((r) => r.id === 'prepare-call-rel');
    assert.equal(record?.bundle, b.bundle);
  } finally {
    caller.kill('SIGKILL');
  }
  assert.deepEqual(await recordsOnceReleased(fx.manager), [], 'released once its caller was gone');
});

test('a bad flag through the C client and the manager: exit 1, one error line, and the error as the last json line of --log', async () => {
  const log = path.join(fx.work, 'bad-flag.log');
  const out = await client(['--log', log, '--log-format', 'json', 'create', '--bogus', 'prepare-call-bogus']);
  assert.deepEqual({ exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr }, { exitCode: 1, stdout: '', stderr: 'sysrunc: create: flag provided but not defined: -bogus\n' });
  const last = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop() ?? '') as { level: string; msg: string };
  assert.deepEqual({ level: last.level, msg: last.msg }, { level: 'error', msg: 'sysrunc: create: flag provided but not defined: -bogus' });
  assert.deepEqual(await managerRecords(fx.manager), []);
});

test('create through bin/sysrunc from a bundle named with spaces, quotes, a backslash and non-ASCII: state.bundle names it exactly', async () => {
  const b = await fx.bundle('odd \'b\' "u" \\ ndlé 😀', ['sleep', '1000']);
  const id = 'prepare-call-odd';
  const created = await fx.sysrunc.cli(['create', '--bundle', b.bundle, id]);
  assert.equal(created.exitCode, 0, created.stderr);
  try {
    const state = await fx.sysrunc.cli(['state', id]);
    assert.equal((JSON.parse(state.stdout) as { bundle: string }).bundle, b.bundle);
  } finally {
    const deleted = await fx.sysrunc.cli(['delete', '--force', id]);
    assert.equal(deleted.exitCode, 0, deleted.stderr);
  }
});
