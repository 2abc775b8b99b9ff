// create and run handed over by the C client (dist/sysrunc-prepare-call --hand-over, exec'd by
// bin/sysrunc; the same function in the C launcher dist/sysrunc's own process, exec'd by engines;
// both tested alike): runc's argv as the manager makes it (runtime-call/runc-argv.ts) is the one
// bin/sysrunc's own rebuild makes, and where the client does not exec runc it execs the launcher
// again with what came of its request. The manager is a stand-in socket; runc a script that prints
// what it was given. (Exec'ing runc in its mount namespace is the e2e and conformance tests'.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { runProgram, type ProgramRun } from '../helpers/run-program.ts';
import { lineServer, writeLine, type LineServer } from '../helpers/line-server.ts';
import type { Params } from '../../src/manager-api/v1.ts';
import { parseInvocation } from '../../src/oci/invocation.ts';
import { parseCreateCall } from '../../src/runtime-call/prepare-request.ts';
import { preparedRuncArgv } from '../../src/runtime-call/runc-argv.ts';
import { answerPrepareCall } from '../../src/manager/prepare-call.ts';
import { C_LAUNCHER, LAUNCHERS } from '../helpers/launchers.ts';

const CLIENT = path.join(REPO_ROOT, 'dist', 'sysrunc-prepare-call');
const dir = mkdtempSync('/tmp/sysrunc-hand-over-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A program that records its argv (NUL-separated) and the hand-back variables, then exits 0. */
const recorder = path.join(dir, 'recorder');
writeFileSync(
  recorder,
  `#!/bin/sh\nprintf '%s\\0' "$@" >"${dir}/argv"\nprintf '%s\\n' "back=\${SYSRUNC_HAND_BACK-unset}" "lost=\${SYSRUNC_PREPARE_LOST-unset}" "prepared=\${SYSRUNC_PREPARED-unset}" "pid=$$" >"${dir}/env"\n`,
  { mode: 0o755 },
);
const recorded = () => ({ argv: readFileSync(path.join(dir, 'argv'), 'utf8').split('\0').slice(0, -1), env: readFileSync(path.join(dir, 'env'), 'utf8') });

async function run(program: string, args: readonly string[], env: Record<string, string> = {}): Promise<ProgramRun & { pid: number }> {
  let pid = -1;
  const out = await runProgram(program, args, { env, cwd: dir, started: (p) => (pid = p) });
  return { ...out, pid };
}

const PREPARED_LINES = '/run/prepared\n\nsync\n/caller\n';

async function withManager(answer: (req: { seq: number; method: string; line: string }, conn: import('node:net').Socket) => void, fn: (mgr: LineServer) => Promise<void>): Promise<void> {
  const mgr = await lineServer(answer);
  try {
    await fn(mgr);
  } finally {
    await mgr.close();
  }
}

/**
 * The two that hand a create over in the process that becomes runc: sysrunc-prepare-call
 * --hand-over (exec'd by bin/sysrunc) and the C launcher (dist/sysrunc, the same function in its
 * own process), a copy of it installed with the recorder as its bin/sysrunc.
 */
interface HandingOver {
  readonly name: string;
  run(args: readonly string[], o: { socket: string; runtime?: string; env?: Record<string, string> }): Promise<ProgramRun & { pid: number }>;
  /** The callerPid its request names, run as `pid`. */
  callerPid(pid: number): number;
}
const cTop = path.join(dir, 'c-install');
mkdirSync(path.join(cTop, 'bin'), { recursive: true });
mkdirSync(path.join(cTop, 'dist'));
copyFileSync(C_LAUNCHER, path.join(cTop, 'dist', 'sysrunc'));
copyFileSync(recorder, path.join(cTop, 'bin', 'sysrunc'));
const HANDING_OVER: readonly HandingOver[] = [
  {
    name: 'sysrunc-prepare-call --hand-over',
    run: (args, o) => run(CLIENT, ['--hand-over', recorder, o.runtime ?? '/bin/false', o.socket, ...args], { SYSRUNC_CALLER_PID: '4242', ...o.env }),
    callerPid: () => 4242,
  },
  {
    name: 'dist/sysrunc',
    run: (args, o) => run(path.join(cTop, 'dist', 'sysrunc'), args, { SYSRUNC_RUNTIME: o.runtime ?? '/bin/false', SYSRUNC_MGR_SOCKET: o.socket, SYSRUNC_CONFIG: path.join(dir, 'no-config.json'), ...o.env }),
    // It is the process that becomes runc, as bin/sysrunc is.
    callerPid: (pid) => pid,
  },
];

for (const h of HANDING_OVER) {
  test(`${h.name}: the hand-over request asks the manager for runc's argv (handOver) besides what prepareCall always sends`, async () => {
    await withManager((req, conn) => writeLine(conn, { seq: req.seq, error: { code: 'invalid-request', message: 'no' } }), async (mgr) => {
      const out = await h.run(['create', 'x'], { socket: mgr.socket });
      const { params } = JSON.parse(mgr.requests[0] as string) as { params: Params<'prepareCall'> };
      assert.deepEqual(params, { argv: ['create', 'x'], cwd: dir, callerPid: h.callerPid(out.pid), handOver: true });
    });
  });

  test(`${h.name}: no answer: the launcher exec'd again (same pid), with the same argv and SYSRUNC_HAND_BACK=<pid>:unanswered`, async () => {
    const out = await h.run(['--root', '/r', 'create', '--bundle', 'b c', 'x'], { socket: path.join(dir, 'nobody.sock') });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(recorded(), { argv: ['--root', '/r', 'create', '--bundle', 'b c', 'x'], env: `back=${out.pid}:unanswered\nlost=unset\nprepared=unset\npid=${out.pid}\n` });
  });

  test(`${h.name}: the manager died with the request: handed back unanswered, SYSRUNC_PREPARE_LOST saying how`, async () => {
    await withManager((_req, conn) => conn.end(), async (mgr) => {
      const out = await h.run(['create', 'x'], { socket: mgr.socket });
      assert.equal(recorded().env, `back=${out.pid}:unanswered\nlost=EOF\nprepared=unset\npid=${out.pid}\n`);
    });
  });

  test(`${h.name}: an answer without runc's argv (a foreground run whose cleanup is waited for): its messages written, then handed back prepared, with the lines`, async () => {
    await withManager((req, conn) => writeLine(conn, { seq: req.seq, result: { exitCode: 0, writes: [{ text: 'warned\n' }], stdout: PREPARED_LINES } }), async (mgr) => {
      const out = await h.run(['run', 'x'], { socket: mgr.socket });
      assert.deepEqual({ stdout: out.stdout, stderr: out.stderr }, { stdout: '', stderr: 'warned\n' });
      assert.equal(recorded().env, `back=${out.pid}:prepared\nlost=unset\nprepared=${PREPARED_LINES}\npid=${out.pid}\n`);
    });
  });

  test(`${h.name}: a refused call: its messages and exit status, and neither runc nor the launcher`, async () => {
    rmSync(path.join(dir, 'env'), { force: true });
    await withManager((req, conn) => writeLine(conn, { seq: req.seq, result: { exitCode: 1, writes: [{ text: 'sysrunc: bad\n' }], stdout: '' } }), async (mgr) => {
      const out = await h.run(['create', 'x'], { socket: mgr.socket, runtime: recorder });
      assert.deepEqual({ status: out.status, stdout: out.stdout, stderr: out.stderr }, { status: 1, stdout: '', stderr: 'sysrunc: bad\n' });
      assert.throws(() => readFileSync(path.join(dir, 'env')), /ENOENT/);
    });
  });
}

/**
 * bin/sysrunc's own rebuild of argv (the path where the per-call binary answered): a copy of the
 * launcher without sysrunc-bundle-exec beside it, handed back the prepared lines, execs the recorder.
 */
async function launcherRebuild(argv: readonly string[]): Promise<string[]> {
  const top = path.join(dir, 'install');
  mkdirSync(path.join(top, 'bin'), { recursive: true });
  copyFileSync(path.join(REPO_ROOT, 'bin', 'sysrunc'), path.join(top, 'bin', 'sysrunc'));
  const lines = '/run/prepared\n/abs/console.sock\nasync\n/caller\n';
  const script = 'SYSRUNC_HAND_BACK=$$:prepared exec "$0" "$@"';
  const out = await run('sh', ['-c', script, path.join(top, 'bin', 'sysrunc'), ...argv], { SYSRUNC_PREPARED: lines, SYSRUNC_RUNTIME: recorder, SYSRUNC_MGR_SOCKET: path.join(dir, 'nobody.sock') });
  assert.equal(out.status, 0, out.stderr);
  return recorded().argv;
}

for (const argv of [
  ['create', 'x'],
  ['--root', '/r', '--log', 'l', '--log-format=json', '--sysrunc-ownership=clone', 'create', '--bundle', 'b', '--console-socket', 'c.sock', '--pid-file', 'p', 'x'],
  ['--systemd-cgroup', 'create', '-b=b', '--console-socket=c.sock', '--no-pivot', '--preserve-fds', '3', 'x'],
  ['create', '--pidfd-socket', '--bundle', '-bundle', 'b', 'x'],
  ['run', '-d', '--keep', '--bundle=b', '--', 'x'],
  ['-root', '/r', '-sysrunc-lxcfs=false', 'run', '--detach=true', '-console-socket', 'c.sock', 'x'],
] as const) {
  test(`runc's argv from the manager is bin/sysrunc's own rebuild: ${argv.join(' ')}`, async () => {
    const call = parseCreateCall(parseInvocation(argv), (argv as readonly string[]).includes('run') ? 'run' : 'create', dir);
    const fromManager = preparedRuncArgv(call.inv, call.command, '/run/prepared', call.consoleSocket === '' ? '' : '/abs/console.sock');
    assert.deepEqual(fromManager, await launcherRebuild(argv));
  });
}

/** The manager's answer to a hand-over request whose prepare gives `cleanup`. */
function managerAnswer(argv: string[], cleanup: 'sync' | 'async') {
  const prepared = { bundle: '/run/mgr/bundles/x', warnings: [], cleanup };
  return answerPrepareCall({ prepare: () => Promise.resolve(prepared), unexpected: () => undefined }, { argv, cwd: dir, callerPid: process.pid, handOver: true });
}

test('the manager\'s hand-over answer: runc\'s argv with the caller\'s bundle, the prepared config and the caller\'s bundle', async () => {
  const answer = await managerAnswer(['--root', '/r', 'create', '--bundle', 'b', 'x'], 'sync');
  assert.equal(answer.exitCode, 0);
  assert.deepEqual(answer.runc, { argv: ['--root', '/r', 'create', '--bundle', path.join(dir, 'b'), 'x'], preparedConfig: '/run/mgr/bundles/x/config.json', callerBundle: path.join(dir, 'b') });
});

test('a foreground run whose cleanup is waited for gets no runc argv (it runs under the per-call binary); a detached one does', async () => {
  assert.equal((await managerAnswer(['run', 'x'], 'sync')).runc, undefined);
  assert.notEqual((await managerAnswer(['run', 'x'], 'async')).runc, undefined);
  assert.notEqual((await managerAnswer(['run', '-d', 'x'], 'sync')).runc, undefined);
});

for (const launcher of LAUNCHERS) {
  test(`a SYSRUNC_HAND_BACK of another process (inherited, stale) is ignored: ${launcher.name} still asks through the C client`, async () => {
    await withManager((req, conn) => writeLine(conn, { seq: req.seq, error: { code: 'invalid-request', message: 'no' } }), async (mgr) => {
      const env = { SYSRUNC_HAND_BACK: '1:prepared', SYSRUNC_PREPARED: '/run/forged\n\nasync\n/caller\n', SYSRUNC_MGR_SOCKET: mgr.socket, SYSRUNC_RUNTIME: recorder, SYSRUNC_MGR_WAIT_MS: '0', SYSRUNC_CONFIG: path.join(dir, 'no-config.json') };
      await run(launcher.path, ['create', 'stale-1'], env);
      const first = JSON.parse(mgr.requests[0] ?? '{}') as { method?: string; params?: Params<'prepareCall'> };
      assert.deepEqual({ method: first.method, handOver: first.params?.handOver }, { method: 'prepareCall', handOver: true });
    });
  });
}
