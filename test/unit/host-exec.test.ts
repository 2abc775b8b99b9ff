import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type StdioOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { ExecutableNotFoundError, execReplace } from '../../src/host/exec.ts';
import { SyscallError } from '../../src/host/libc.ts';
import type { ExecChildSpec } from '../fixtures/host/exec-child.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/host/exec-child.ts', import.meta.url));
const SIGPIPE_BIT = 1n << 12n;
const SIGXFSZ_BIT = 1n << 24n;
const SIGUSR1 = 10;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

interface ChildResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  fd3: string;
}

function collect(stream: Readable | null | undefined): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (data += chunk));
    stream.on('end', () => resolve(data));
  });
}

async function runChild(spec: ExecChildSpec, stdio: StdioOptions = ['ignore', 'pipe', 'pipe', 'pipe']): Promise<ChildResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(spec)], { stdio });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const [stdout, stderr, fd3] = await Promise.all([
    collect(child.stdout),
    collect(child.stderr),
    collect(child.stdio[3] as Readable | null | undefined),
  ]);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
    else child.on('exit', (c, s) => resolve([c, s]));
  });
  return { pid, code, signal, stdout, stderr, fd3 };
}

function sh(script: string, extra: Partial<ExecChildSpec> = {}): ExecChildSpec {
  return { file: '/bin/sh', argv: ['sh', '-c', script], ...extra };
}

function sigMask(status: string, field: string): bigint {
  const hex = new RegExp(`${field}:\\s*([0-9a-f]+)`).exec(status)?.[1];
  assert.ok(hex, `${field} in ${status}`);
  return BigInt(`0x${hex}`);
}

test('keeps the pid of the replaced process', async () => {
  const r = await runChild(sh('echo $$'));
  assert.equal(r.stdout.trim(), String(r.pid));
});

test('exit status is that of the new program', async () => {
  const r = await runChild(sh('exit 7'));
  assert.equal(r.code, 7);
});

test('passes fd 3 on when keepFds covers it', async () => {
  const r = await runChild(sh('echo through-fd3 >&3', { keepFds: 4 }));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.fd3, 'through-fd3\n');
});

test('counts --preserve-fds in argv like runc does', async () => {
  // Trailing words become sh's $0 and $1; only their presence in argv matters.
  const r = await runChild(sh('echo preserved >&3', { argv: ['sh', '-c', 'echo preserved >&3', 'sh', '--preserve-fds', '1'] }));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.fd3, 'preserved\n');
});

test('counts LISTEN_FDS when LISTEN_PID is the process', async () => {
  const r = await runChild(sh('echo listen >&3', { listenFds: 1 }));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.fd3, 'listen\n');
});

test('does not pass fds beyond stdio by default', async () => {
  const r = await runChild(sh('echo leaked >&3'));
  assert.notEqual(r.code, 0);
  assert.equal(r.fd3, '');
});

/** fds of this process that any child inherits anyway (not close-on-exec), beyond 0..3. */
function inheritableFdsAbove3(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      if (fd <= 3) return false;
      try {
        const flags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0';
        return (parseInt(flags, 8) & O_CLOEXEC) === 0;
      } catch {
        return false;
      }
    });
}

test("passes only the kept fds, none of Node's own", async () => {
  const r = await runChild(sh('ls -l /proc/self/fd', { keepFds: 4 }));
  assert.equal(r.code, 0, r.stderr);
  const fds = r.stdout
    .split('\n')
    .filter((line) => / -> /.test(line) && !/\/proc\/\d+\/fd$/.test(line))
    .map((line) => Number(/ (\d+) -> /.exec(line)?.[1]));
  const expected = [0, 1, 2, 3, ...inheritableFdsAbove3()];
  assert.deepEqual(fds.sort((a, b) => a - b), expected.sort((a, b) => a - b));
});

test('the new program gets SIGPIPE and SIGXFSZ with default disposition', async () => {
  assert.notEqual(sigMask(readFileSync('/proc/self/status', 'utf8'), 'SigIgn') & SIGPIPE_BIT, 0n, 'node ignores SIGPIPE');
  const r = await runChild({ file: '/bin/cat', argv: ['cat', '/proc/self/status'] });
  const ignored = sigMask(r.stdout, 'SigIgn');
  assert.equal(ignored & SIGPIPE_BIT, 0n);
  assert.equal(ignored & SIGXFSZ_BIT, 0n);
});

test('kill -PIPE terminates the new program', async () => {
  const r = await runChild(sh('kill -PIPE $$; echo survived'));
  assert.equal(r.signal, 'SIGPIPE');
  assert.equal(r.stdout, '');
});

test('the new program starts with an empty signal mask', async () => {
  const r = await runChild({ file: '/bin/cat', argv: ['cat', '/proc/self/status'], blockSignal: SIGUSR1 });
  assert.match(r.stderr, /before-exec 0*200 /, 'fixture blocked SIGUSR1');
  assert.equal(sigMask(r.stdout, 'SigBlk'), 0n);
});

test('stdio that Node made non-blocking is blocking again in the new program', async () => {
  const r = await runChild({ file: '/bin/cat', argv: ['cat', '/proc/self/fdinfo/0'], touchStdin: true }, ['pipe', 'pipe', 'pipe', 'pipe']);
  const before = /before-exec \S+ (\d+)/.exec(r.stderr)?.[1];
  assert.ok(before !== undefined && (parseInt(before, 8) & O_NONBLOCK) !== 0, `Node set O_NONBLOCK: ${r.stderr}`);
  const after = /flags:\s*(\d+)/.exec(r.stdout)?.[1];
  assert.ok(after !== undefined, r.stdout);
  assert.equal(parseInt(after, 8) & O_NONBLOCK, 0);
});

test('the new program gets exactly the given environment', async () => {
  const r = await runChild(sh('env', { env: { FOO: 'bar baz', DROPPED: undefined } }));
  const vars = r.stdout.trim().split('\n').filter((l) => !/^(PWD|SHLVL|_)=/.test(l)).sort();
  assert.deepEqual(vars, ['FOO=bar baz', `PATH=${process.env['PATH']}`]);
});

test('resolves a file name without a slash against PATH', async () => {
  const r = await runChild({ file: 'sh', argv: ['sh', '-c', 'exit 3'] });
  assert.equal(r.code, 3);
});

test('throws naming the file when it is not found in PATH', () => {
  assert.throws(
    () => execReplace('sysrunc-no-such-runtime', ['sysrunc-no-such-runtime'], {}),
    (err: unknown) =>
      err instanceof ExecutableNotFoundError &&
      err.message === 'sysrunc-no-such-runtime: executable file not found in $PATH',
  );
});

test('a failed execve throws and leaves the process as it was', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-exec-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'not-executable');
  writeFileSync(file, '#!/bin/sh\n', { mode: 0o644 });
  const statusBefore = readFileSync('/proc/self/status', 'utf8');
  assert.throws(
    () => execReplace(file, ['not-executable'], {}),
    (err: unknown) =>
      err instanceof SyscallError && err.code === 'EACCES' && err.message === `execve ${file}: EACCES (Permission denied)`,
  );
  const statusAfter = readFileSync('/proc/self/status', 'utf8');
  assert.equal(sigMask(statusAfter, 'SigIgn'), sigMask(statusBefore, 'SigIgn'));
  assert.equal(sigMask(statusAfter, 'SigBlk'), sigMask(statusBefore, 'SigBlk'));
  const flags = /flags:\s*(\d+)/.exec(readFileSync('/proc/self/fdinfo/1', 'utf8'))?.[1] ?? '0';
  assert.notEqual(parseInt(flags, 8) & O_CLOEXEC, 0, 'fd 1 is close-on-exec again');
});
