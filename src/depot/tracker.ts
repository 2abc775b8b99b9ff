// The process tracker: starts each process under its own supervisor (native/supervise.c) and
// answers everything else from the process's directory, so it works the same after a restart.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync, watch, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DepotError, type AttachEvent, type Params, type ProcessInfo } from '../depot-api/v1.ts';
import type { DepotRuntime } from './runtime.ts';
import { pidAlive, readOptional, readPid } from './layout.ts';
import { processConfig, type OciProcess } from './spec.ts';
import { readOutput } from './output-files.ts';

/** Wake-up for waits and attaches when an inotify event is missed (e.g. a watch set up late). */
const FALLBACK_POLL_MS = 500;

/** The supervisor's pid still runs the supervisor (not a zombie, not a reused pid). */
export function supervisorAlive(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sysrunc-depot-s');
  } catch {
    return false;
  }
}

export async function startProcess(rt: DepotRuntime, p: Params<'exec'>): Promise<{ process: string; pid: number }> {
  rt.depot.mustExist(p.container);
  const id = p.process ?? `p-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const dir = rt.depot.processDir(p.container, id);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DepotError('conflict', `process ${id} of container ${p.container}: ${dir} already exists`);
    throw new Error(`mkdir ${dir}: ${(err as Error).message}`);
  }
  const spec = processConfig(p.spec);
  writeFileSync(path.join(dir, 'process.json'), `${JSON.stringify(spec)}\n`, { mode: 0o600 });
  const args = [
    dir, spec.terminal ? 'tty' : 'pipes',
    rt.sysrunc, '--root', rt.runcRoot, 'exec', '-d', '--pid-file', path.join(dir, 'pid'), '--process', path.join(dir, 'process.json'),
    ...(spec.terminal ? ['--console-socket', 'console.sock'] : []),
    p.container,
  ];
  const log = openSync(path.join(dir, 'supervisor.log'), 'a', 0o600);
  // Its own session (detached): it must not get the daemon's terminal signals, and it outlives the
  // daemon. While the daemon lives it is the supervisor's parent and reaps it.
  const env = { ...rt.env, SYSRUNC_DEPOT_MAX_OUTPUT: String(rt.maxOutputBytes) };
  const child = spawn(rt.supervisor, args, { detached: true, stdio: ['ignore', 'ignore', log, 'pipe'], env, cwd: dir });
  closeSync(log);
  const report = await new Promise<string>((resolve, reject) => {
    child.once('error', () => rmSync(dir, { recursive: true, force: true }));
    let text = '';
    const pipe = child.stdio[3] as Readable | null | undefined;
    child.once('error', (err) => reject(new Error(`spawn ${rt.supervisor}: ${err.message}`)));
    if (pipe === null || pipe === undefined) return reject(new Error('supervisor start-up pipe missing'));
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => (text += chunk));
    pipe.once('close', () => resolve(text.trim()));
  });
  child.unref();
  const ok = /^ok (\d+)$/.exec(report);
  if (ok === null) {
    const stderr = (readOptional(path.join(dir, 'stderr')) ?? '').trim();
    const message = `process ${id} in ${p.container}: ${report.replace(/^error /, '') || 'the supervisor exited without a report'}${stderr === '' ? '' : `: ${stderr.split('\n').slice(-3).join(' | ')}`}`;
    rmSync(dir, { recursive: true, force: true });
    throw new DepotError('runtime-failed', message);
  }
  return { process: id, pid: Number(ok[1]) };
}

export function exitCode(dir: string): number | undefined {
  const text = readOptional(path.join(dir, 'exitcode'));
  return text === undefined ? undefined : Number.parseInt(text, 10);
}

export function processInfo(rt: DepotRuntime, container: string, id: string): ProcessInfo {
  const dir = rt.depot.processDir(container, id);
  const spec = JSON.parse(readOptional(path.join(dir, 'process.json')) ?? '{"args":[],"terminal":false}') as Pick<OciProcess, 'args' | 'terminal'>;
  const code = exitCode(dir);
  const base = { id, pid: readPid(path.join(dir, 'pid')) ?? 0, args: spec.args, tty: spec.terminal };
  if (code !== undefined) return { ...base, state: 'exited', exitCode: code };
  const supervisor = readPid(path.join(dir, 'supervisor.pid'));
  if (supervisor !== undefined && supervisorAlive(supervisor)) return { ...base, state: 'running' };
  // The exit code may have landed between the two reads.
  const late = exitCode(dir);
  return late === undefined ? { ...base, state: 'lost' } : { ...base, state: 'exited', exitCode: late };
}

/** processInfo, or not-found once the directory went (the container was destroyed meanwhile). */
function processInfoWhileThere(rt: DepotRuntime, container: string, id: string, dir: string): ProcessInfo {
  const info = processInfo(rt, container, id);
  if (info.exitCode === undefined && !existsSync(dir)) throw new DepotError('not-found', `process ${id} of ${container}: ${dir} was removed (container destroyed)`);
  return info;
}

/** Exited processes only: a running one still has a supervisor writing into the directory. */
export function forgetProcess(rt: DepotRuntime, container: string, id: string): void {
  const dir = rt.depot.mustExistProcess(container, id);
  const info = processInfo(rt, container, id);
  if (info.state === 'running') throw new DepotError('conflict', `process ${id} of ${container} is still running (supervisor in ${dir}); signal it first`);
  rmSync(dir, { recursive: true, force: true });
}

export function listProcesses(rt: DepotRuntime, container: string): ProcessInfo[] {
  rt.depot.mustExist(container);
  return rt.depot.processes(container).map((id) => processInfo(rt, container, id));
}

/** Resolves on the next change in dir (inotify), or after the fallback interval. */
function nextChange(dir: string, abort: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let watcher: ReturnType<typeof watch> | undefined;
    const done = (): void => {
      clearTimeout(timer);
      watcher?.close();
      abort.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, FALLBACK_POLL_MS);
    try {
      watcher = watch(dir, { persistent: false }, done);
      watcher.on('error', done);
    } catch {
      // dir removed (destroy): the caller's next read says so
    }
    abort.addEventListener('abort', done);
  });
}

/** The exit code once the process ended; an error if its supervisor died without writing one. */
export async function waitProcess(rt: DepotRuntime, p: Params<'wait'>, abort: AbortSignal): Promise<number> {
  const dir = rt.depot.mustExistProcess(p.container, p.process);
  for (;;) {
    const changed = nextChange(dir, abort);
    const info = processInfoWhileThere(rt, p.container, p.process, dir);
    if (info.exitCode !== undefined) return info.exitCode;
    if (info.state === 'lost') throw new DepotError('internal', `process ${p.process} of ${p.container}: its supervisor is gone and ${dir}/exitcode was never written`);
    if (abort.aborted) throw new DepotError('internal', 'the client went away');
    await changed;
  }
}

/**
 * Streams the output files from the given offsets until the process has ended and every byte it
 * wrote was sent. The supervisor writes exitcode after the last output, so output read after
 * seeing exitcode is complete.
 */
export async function attachProcess(rt: DepotRuntime, p: Params<'attach'>, send: (e: AttachEvent) => void, abort: AbortSignal): Promise<number> {
  const dir = rt.depot.mustExistProcess(p.container, p.process);
  const offsets = { stdout: p.stdoutOffset ?? 0, stderr: p.stderrOffset ?? 0 };
  for (;;) {
    const changed = nextChange(dir, abort);
    const info = processInfoWhileThere(rt, p.container, p.process, dir);
    for (const stream of ['stdout', 'stderr'] as const) {
      for (;;) {
        const { start, data } = await readOutput(dir, stream, offsets[stream]);
        if (data.length === 0) break;
        // Output older than the kept files was dropped (--max-output-bytes): the stream goes on from `start`.
        offsets[stream] = start + data.length;
        send({ stream, data: data.toString('base64'), offset: offsets[stream] });
      }
    }
    if (info.exitCode !== undefined) return info.exitCode;
    if (info.state === 'lost') throw new DepotError('internal', `process ${p.process} of ${p.container}: its supervisor is gone and ${dir}/exitcode was never written`);
    if (abort.aborted) throw new DepotError('internal', 'the client went away');
    await changed;
  }
}

/** Writes to one of the supervisor's FIFOs; a missing FIFO or no reader means the process ended. */
async function writeFifo(rt: DepotRuntime, container: string, process: string, fifo: 'stdin' | 'control', data: Buffer): Promise<void> {
  const file = path.join(rt.depot.mustExistProcess(container, process), fifo);
  let fd;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENXIO') throw new DepotError('exited', `process ${process} of ${container} has ended (${file}: ${code})`);
    throw new Error(`open ${file}: ${(err as Error).message}`);
  }
  try {
    let off = 0;
    while (off < data.length) {
      try {
        off += writeSync(fd, data, off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN') throw new DepotError(code === 'EPIPE' ? 'exited' : 'internal', `write ${file}: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 5)); // the supervisor drains it
      }
    }
  } finally {
    closeSync(fd);
  }
}

export function writeStdin(rt: DepotRuntime, p: Params<'stdin'>): Promise<void> {
  return writeFifo(rt, p.container, p.process, 'stdin', Buffer.from(p.data, 'base64'));
}

/** Control lines are shorter than PIPE_BUF, so concurrent writers never interleave them. */
export function control(rt: DepotRuntime, container: string, process: string, line: string): Promise<void> {
  return writeFifo(rt, container, process, 'control', Buffer.from(`${line}\n`));
}
