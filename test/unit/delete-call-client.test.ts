// The synchronous delete's C client (dist/sysrunc-delete-call) and both launchers' use of it
// (bin/sysrunc runs the client; dist/sysrunc makes the same request in its own process): what it
// sends the manager, how it carries out the answer, and the per-call binary taking over where it
// gets none. The manager is a stand-in socket answering as the test says, or with the manager's own
// answer (manager/delete-call.ts) where the call never reaches a release.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { runProgram, type ProgramRun } from '../helpers/run-program.ts';
import { answeringWith, lineServer, writeLine, type LineServer } from '../helpers/line-server.ts';
import { METHODS, type Params } from '../../src/manager-api/v1.ts';
import { answerDeleteCall } from '../../src/manager/delete-call.ts';
import { LAUNCHERS, type Launcher } from '../helpers/launchers.ts';

const CLIENT = path.join(REPO_ROOT, 'dist', 'sysrunc-delete-call');
const PER_CALL = path.join(REPO_ROOT, 'dist', 'sysrunc-call');
const NOT_ANSWERED = 3;
const dir = mkdtempSync('/tmp/sysrunc-delete-call-client-');
after(() => rmSync(dir, { recursive: true, force: true }));

type Run = ProgramRun;

function run(program: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return runProgram(program, args, { env, cwd: dir });
}

/** The stand-in manager answering as the manager does, with releases that always succeed. */
function managerLike(): Promise<LineServer> {
  return lineServer((req, conn) => {
    const { params } = JSON.parse(req.line) as { params: Params<'deleteCall'> };
    void answerDeleteCall({ release: () => Promise.resolve({ found: true }), unexpected: () => undefined }, params).then((result) => writeLine(conn, { seq: req.seq, result }));
  });
}

const AWKWARD_ARGV = ['--root', '/run/a "b"\\ \t\nc', 'delete', '--force', 'ctr-ü-1'];
const untimed = (text: string) => text.replace(/"?time"?[=:]"[^"]*"/g, 'time=<time>');

test('the request carries argv unchanged, the cwd and runc\'s status', async () => {
  const mgr = await answeringWith({ exitCode: 0, writes: [] });
  try {
    const out = await run(CLIENT, [mgr.socket, '137', ...AWKWARD_ARGV]);
    assert.equal(out.status, 0, out.stderr);
    const request = JSON.parse(mgr.requests[0] as string) as { method: string; params: Params<'deleteCall'> };
    assert.deepEqual(request, { v: 1, seq: 1, method: 'deleteCall', params: { argv: AWKWARD_ARGV, cwd: dir, runcStatus: 137 } });
    assert.ok(METHODS.deleteCall.params.safeParse(request.params).success, 'the params match the API');
  } finally {
    await mgr.close();
  }
});

test('the answer carried out: each message to its log file or stderr, in order, nothing on stdout, and the answered exit status', async () => {
  const log = path.join(dir, 'answer.log');
  const mgr = await answeringWith({ exitCode: 1, writes: [{ text: 'to the log\n', file: log }, { text: 'to stderr\n' }] });
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, '1', 'delete', 'x']), { status: 1, signal: null, stdout: '', stderr: 'to stderr\n' });
    assert.equal(readFileSync(log, 'utf8'), 'to the log\n');
  } finally {
    await mgr.close();
  }
});

for (const [what, argv] of [
  ['an unknown delete flag, json log', ['--log', 'bad.log', '--log-format', 'json', 'delete', '--bogus', 'x']],
  ['a missing container id, text log', ['--log', 'bad.log', 'delete']],
] as const) {
  test(`${what}: the same one-line error, in the same log format, as the per-call binary, and runc's status`, async () => {
    const mgr = await managerLike();
    const log = path.join(dir, 'bad.log');
    try {
      rmSync(log, { force: true });
      const viaClient = await run(CLIENT, [mgr.socket, '0', ...argv]);
      const clientLog = readFileSync(log, { encoding: 'utf8', flag: 'a+' });
      rmSync(log, { force: true });
      const viaPerCall = await run(PER_CALL, argv, { SYSRUNC_MGR_SOCKET: mgr.socket, SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_RUNC_STATUS: '0' });
      const perCallLog = readFileSync(log, { encoding: 'utf8', flag: 'a+' });
      assert.equal(viaClient.status, 0, 'runc\'s status');
      assert.match(viaClient.stderr, /^sysrunc: [^\n]+\n$/);
      assert.equal(viaClient.stderr, viaPerCall.stderr);
      assert.notEqual(clientLog, '', 'the log file has the error');
      assert.equal(untimed(clientLog), untimed(perCallLog));
    } finally {
      await mgr.close();
    }
  });
}

test('no manager listening: exit 3 and nothing written', async () => {
  assert.deepEqual(await run(CLIENT, [path.join(dir, 'nobody.sock'), '0', 'delete', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
});

test('an error answer (a manager without deleteCall): exit 3 and nothing written', async () => {
  const mgr = await lineServer((req, conn) => writeLine(conn, { seq: req.seq, error: { code: 'invalid-request', message: 'unknown method "deleteCall"' } }));
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, '0', 'delete', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
  } finally {
    await mgr.close();
  }
});

test('the manager died with the request: exit 3 and nothing written (the per-call binary resends the release)', async () => {
  const mgr = await lineServer((_req, conn) => conn.end());
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, '0', 'delete', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
  } finally {
    await mgr.close();
  }
});

test('a status argument that is no exit status: exit 3 without asking the manager', async () => {
  const mgr = await answeringWith({ exitCode: 0, writes: [] });
  try {
    for (const status of ['', 'x', '256', '-1', '1x']) {
      assert.deepEqual(await run(CLIENT, [mgr.socket, status, 'delete', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
    }
    assert.equal(mgr.requests.length, 0);
  } finally {
    await mgr.close();
  }
});

/** launcher deleting `id`, whose hint asks for the synchronous delete, with runc stood in for by `runtime`. */
async function launcherDelete(launcher: Launcher, mgr: LineServer, id: string, runtime: string): Promise<Run> {
  const hints = path.join(path.dirname(mgr.socket), 'hints');
  mkdirSync(hints, { recursive: true });
  writeFileSync(path.join(hints, id), '{"delete":"sync","exec":"as-is"}\n');
  const env = { SYSRUNC_MGR_SOCKET: mgr.socket, SYSRUNC_RUNTIME: runtime, SYSRUNC_MGR_WAIT_MS: '0', SYSRUNC_CONFIG: path.join(dir, 'no-config.json') };
  return run(launcher.path, ['--root', dir, 'delete', '--force', id], env);
}

/** A runc stand-in that notes each run in a file of its own, and succeeds. */
function countingRuntime(name: string): { runtime: string; runs: () => number } {
  const runtime = path.join(dir, name);
  const log = `${runtime}.runs`;
  writeFileSync(runtime, `#!/bin/sh\necho ran >>'${log}'\n`, { mode: 0o755 });
  return { runtime, runs: () => readFileSync(log, 'utf8').split('\n').length - 1 };
}

for (const launcher of LAUNCHERS) {
  test(`${launcher.name}'s synchronous delete: runc, then one deleteCall and no per-call binary, with runc's status`, async () => {
    const mgr = await answeringWith({ exitCode: 1, writes: [] });
    try {
      const id = `sync-1-${launcher.name.replace('/', '-')}`;
      const out = await launcherDelete(launcher, mgr, id, '/bin/false');
      assert.deepEqual(out, { status: 1, signal: null, stdout: '', stderr: '' });
      assert.deepEqual(mgr.requests.map((line) => (JSON.parse(line) as { method: string; params: Params<'deleteCall'> }).params), [{ argv: ['--root', dir, 'delete', '--force', id], cwd: dir, runcStatus: 1 }]);
    } finally {
      await mgr.close();
    }
  });

  test(`${launcher.name}'s synchronous delete where the C client gets no answer: the per-call binary releases, runc ran once, and its status stands`, async () => {
    const mgr = await lineServer((req, conn) => {
      if (req.method === 'release') writeLine(conn, { seq: req.seq, result: { found: true } });
      else writeLine(conn, { seq: req.seq, error: { code: 'invalid-request', message: `unknown method ${JSON.stringify(req.method)}` } });
    });
    try {
      const id = `sync-2-${launcher.name.replace('/', '-')}`;
      const runc = countingRuntime(`runc-${id}`);
      const out = await launcherDelete(launcher, mgr, id, runc.runtime);
      assert.deepEqual(out, { status: 0, signal: null, stdout: '', stderr: '' });
      assert.equal(runc.runs(), 1);
      assert.deepEqual(mgr.requests.map((line) => (JSON.parse(line) as { method: string }).method), ['deleteCall', 'release']);
      assert.deepEqual((JSON.parse(mgr.requests[1] as string) as { params: Params<'release'> }).params, { id, runtimeRoot: dir });
    } finally {
      await mgr.close();
    }
  });
}
