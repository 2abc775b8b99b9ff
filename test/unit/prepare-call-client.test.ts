// The C client of create and run (dist/sysrunc-prepare-call): what it sends the manager and how it
// carries out the answer. The manager here is a stand-in socket that answers as the test says, or
// with the manager's own answer (manager/prepare-call.ts) where the call never reaches prepare.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { runProgram, type ProgramRun } from '../helpers/run-program.ts';
import { answeringWith, lineServer, writeLine } from '../helpers/line-server.ts';
import { METHODS, type Params } from '../../src/manager-api/v1.ts';
import { answerPrepareCall } from '../../src/manager/prepare-call.ts';

const CLIENT = path.join(REPO_ROOT, 'dist', 'sysrunc-prepare-call');
const PER_CALL = path.join(REPO_ROOT, 'dist', 'sysrunc-call');
const NOT_ANSWERED = 3;
const dir = mkdtempSync('/tmp/sysrunc-prepare-call-');
after(() => rmSync(dir, { recursive: true, force: true }));

type Run = ProgramRun;

function run(program: string, args: readonly string[], env: Record<string, string> = {}, cwd = dir): Promise<Run> {
  return runProgram(program, args, { env, cwd });
}

const PREPARED = { exitCode: 0, writes: [], stdout: '/run/prepared\n\nasync\n/caller\n' };
const AWKWARD_ARGV = ['--root', '/run/a b', 'create', '--bundle', 'say "hi"\\ \t\nnext', '--console-socket', 'émoji 😀 ünï', 'ctr-1'];

test('the request carries argv unchanged (spaces, quotes, backslashes, tabs, newlines, non-ASCII), the cwd and SYSRUNC_CALLER_PID', async () => {
  const mgr = await answeringWith(PREPARED);
  try {
    const out = await run(CLIENT, [mgr.socket, ...AWKWARD_ARGV], { SYSRUNC_CALLER_PID: '4242' });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(mgr.requests.length, 1);
    const request = JSON.parse(mgr.requests[0] as string) as { v: number; seq: number; method: string; params: Params<'prepareCall'> };
    assert.deepEqual(request, { v: 1, seq: 1, method: 'prepareCall', params: { argv: AWKWARD_ARGV, cwd: dir, callerPid: 4242 } });
    assert.ok(METHODS.prepareCall.params.safeParse(request.params).success, 'the params match the API');
  } finally {
    await mgr.close();
  }
});

test('without SYSRUNC_CALLER_PID the caller is the client\'s parent', async () => {
  const mgr = await answeringWith(PREPARED);
  try {
    assert.equal((await run(CLIENT, [mgr.socket, 'create', 'x'])).status, 0);
    assert.equal((JSON.parse(mgr.requests[0] as string) as { params: Params<'prepareCall'> }).params.callerPid, process.pid);
  } finally {
    await mgr.close();
  }
});

test('the answer is carried out in order: each message to its log file (relative to the cwd) or stderr, then stdout, then the exit code', async () => {
  const text = 'é \u2028 😀 "q" \\ \t end';
  writeFileSync(path.join(dir, 'call.log'), 'before\n');
  const mgr = await answeringWith({
    exitCode: 0,
    writes: [
      { text: `log: ${text}\n`, file: 'call.log' },
      { text: `sysrunc: warning: ${text}\n` },
      { text: 'log again\n', file: path.join(dir, 'call.log') },
    ],
    stdout: `/run/prepared\n\nsync\n/caller ${text}\n`,
  });
  try {
    const out = await run(CLIENT, [mgr.socket, 'create', 'x']);
    assert.deepEqual(out, { status: 0, signal: null, stdout: `/run/prepared\n\nsync\n/caller ${text}\n`, stderr: `sysrunc: warning: ${text}\n` });
    assert.equal(readFileSync(path.join(dir, 'call.log'), 'utf8'), `before\nlog: ${text}\nlog again\n`);
  } finally {
    await mgr.close();
  }
});

test('a lone surrogate in the answer is written as U+FFFD, as Node writes it', async () => {
  const mgr = await lineServer((req, conn) => conn.write(`{"seq":${req.seq},"result":{"exitCode":1,"writes":[{"text":"a\\ud800b\\n"}],"stdout":""}}\n`));
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, 'create', 'x']), { status: 1, signal: null, stdout: '', stderr: 'a\ufffdb\n' });
  } finally {
    await mgr.close();
  }
});

/** The manager's own answer for a call that is refused before prepare. */
async function managerAnswer(p: Params<'prepareCall'>) {
  return answerPrepareCall({ prepare: () => Promise.reject(new Error('the call reached prepare')), unexpected: () => undefined }, p);
}

const untimed = (text: string) => text.replace(/"?time"?[=:]"[^"]*"/g, 'time=<time>');

test('a call whose command is not create or run is refused in one line naming the command, before prepare', async () => {
  const answer = await managerAnswer({ argv: ['state', 'x'], cwd: dir, callerPid: process.pid });
  assert.deepEqual(answer, { exitCode: 1, writes: [{ text: 'sysrunc: prepareCall: the call is "state", not create or run\n' }], stdout: '' });
});

for (const [what, argv] of [
  ['an unknown create flag, text log', ['--log', 'bad.log', 'create', '--bogus', 'x']],
  ['an unknown create flag, json log', ['--log', 'bad.log', '--log-format', 'json', 'create', '--bogus', 'x']],
  ['a missing container id, json log', ['--log-format=json', '--log=bad.log', 'run', '--detach']],
  ['an invalid container id', ['create', '../x']],
  ['an unknown log format', ['--log-format', 'yaml', 'create', 'x']],
  ['an unknown sysrunc runtime flag, json log', ['--log', 'bad.log', '--log-format', 'json', '--sysrunc-nosuch=1', 'create', 'x']],
] as const) {
  test(`${what}: the same one-line error, in the same log format, as the per-call binary`, async () => {
    const mgr = await lineServer((req, conn) => {
      const { params } = JSON.parse(req.line) as { params: Params<'prepareCall'> };
      void managerAnswer(params).then((result) => writeLine(conn, { seq: req.seq, result }));
    });
    const log = path.join(dir, 'bad.log');
    try {
      rmSync(log, { force: true });
      const viaClient = await run(CLIENT, [mgr.socket, ...argv]);
      const clientLog = readFileSync(log, { encoding: 'utf8', flag: 'a+' });
      rmSync(log, { force: true });
      const viaPerCall = await run(PER_CALL, argv, { SYSRUNC_MGR_SOCKET: mgr.socket, SYSRUNC_RUNTIME: '/bin/true' });
      const perCallLog = readFileSync(log, { encoding: 'utf8', flag: 'a+' });
      assert.equal(viaClient.status, 1, viaClient.stderr);
      assert.match(viaClient.stderr, /^sysrunc: [^\n]+\n$/);
      assert.deepEqual(viaClient, viaPerCall);
      assert.equal(untimed(clientLog), untimed(perCallLog));
      if ((argv as readonly string[]).includes('bad.log')) assert.notEqual(clientLog, '', 'the log file has the error');
    } finally {
      await mgr.close();
    }
  });
}

test('no manager listening: exit 3 and nothing written (the per-call binary then waits and words the error)', async () => {
  assert.deepEqual(await run(CLIENT, [path.join(dir, 'nobody.sock'), 'create', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
});

test('an error answer (a manager without prepareCall): exit 3 and nothing written', async () => {
  const mgr = await lineServer((req, conn) => writeLine(conn, { seq: req.seq, error: { code: 'invalid-request', message: 'unknown method "prepareCall"' } }));
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, 'create', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
  } finally {
    await mgr.close();
  }
});

test('the connection closed before an answer (the manager died with the request): exit 4, how on stdout, nothing else written', async () => {
  const mgr = await lineServer((_req, conn) => conn.end());
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, 'create', 'x']), { status: 4, signal: null, stdout: 'EOF', stderr: '' });
  } finally {
    await mgr.close();
  }
});

test('bin/sysrunc create whose manager died with the C client\'s request, not to wait (SYSRUNC_MGR_WAIT_MS=0): the per-call binary\'s words for a lost request, nothing resent', async () => {
  const mgr = await lineServer((_req, conn) => conn.end());
  try {
    const env = { SYSRUNC_MGR_SOCKET: mgr.socket, SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_MGR_WAIT_MS: '0', SYSRUNC_CONFIG: path.join(dir, 'no-config.json') };
    const out = await run(path.join(REPO_ROOT, 'bin', 'sysrunc'), ['create', '--bundle', dir, 'lost-1'], env);
    assert.deepEqual(out, { status: 1, signal: null, stdout: '', stderr: `sysrunc: manager at ${mgr.socket}: prepare: read: EOF\n` });
    assert.equal(mgr.requests.length, 1, 'only the C client\'s request');
  } finally {
    await mgr.close();
  }
});

test('an answer that is not the API\'s (no exitCode): exit 3 and nothing written', async () => {
  const mgr = await answeringWith({ writes: [{ text: 'x\n' }], stdout: 'y\n' });
  try {
    assert.deepEqual(await run(CLIENT, [mgr.socket, 'create', 'x']), { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
  } finally {
    await mgr.close();
  }
});

test('an argument that is not UTF-8: exit 3 without asking the manager', async () => {
  const mgr = await answeringWith(PREPARED);
  try {
    const out = await run('sh', ['-c', 'exec "$0" "$1" create "$(printf "\\377")"', CLIENT, mgr.socket]);
    assert.deepEqual(out, { status: NOT_ANSWERED, signal: null, stdout: '', stderr: '' });
    assert.equal(mgr.requests.length, 0);
  } finally {
    await mgr.close();
  }
});

test('SYSRUNC_TEST_FAULT=create:answered: killed by SIGKILL once answered, before anything is written', async () => {
  const mgr = await answeringWith({ ...PREPARED, writes: [{ text: 'never\n' }] });
  try {
    const out = await run(CLIENT, [mgr.socket, 'create', 'x'], { SYSRUNC_TEST_FAULT: 'other,create:answered' });
    assert.equal(out.signal, 'SIGKILL');
    assert.match(out.stderr, /^SYSRUNC_TEST_FAULT: killing pid \d+ at create:answered\n$/);
    assert.equal(out.stdout, '');
  } finally {
    await mgr.close();
  }
});

test('bin/sysrunc create with no manager listening: the C client steps aside and the message is the per-call binary\'s, in the call\'s log format', async () => {
  const log = path.join(dir, 'down.log');
  const argv = ['--log', log, '--log-format', 'json', 'create', '--bundle', dir, 'down-1'];
  const env = { SYSRUNC_MGR_SOCKET: path.join(dir, 'nobody.sock'), SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_MGR_WAIT_MS: '0', SYSRUNC_CONFIG: path.join(dir, 'no-config.json') };
  const viaLauncher = await run(path.join(REPO_ROOT, 'bin', 'sysrunc'), argv, env);
  const launcherLog = readFileSync(log, 'utf8');
  rmSync(log);
  const viaPerCall = await run(PER_CALL, argv, env);
  assert.equal(viaLauncher.status, 1);
  assert.match(viaLauncher.stderr, /^sysrunc: sysrunc-mgr is not reachable at \S+nobody\.sock \(connect: ENOENT\); start it with [^\n]+\n$/);
  assert.deepEqual(viaLauncher, viaPerCall);
  assert.equal(untimed(launcherLog), untimed(readFileSync(log, 'utf8')));
});

test('the C client runs on a CPU below x86-64-v2 (qemu-user\'s qemu64 model): no SIGILL, the same answer', async () => {
  const mgr = await answeringWith(PREPARED);
  try {
    const out = await run('/usr/bin/qemu-x86_64', ['-cpu', 'qemu64', CLIENT, mgr.socket, 'create', 'x']);
    assert.deepEqual(out, { status: 0, signal: null, stdout: PREPARED.stdout, stderr: '' });
  } finally {
    await mgr.close();
  }
});
