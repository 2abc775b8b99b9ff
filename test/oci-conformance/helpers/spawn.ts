// Starting a runtime with more control than fixture.ts's `cli`: extra fds from 3 up (for
// --preserve-fds and LISTEN_FDS), and the child's pid (to signal it) before it exits.
// Output goes to files, not pipes, for the same reason as in fixture.ts: a container's init may
// hold the runtime's stdio open long after the runtime itself exited.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import type { Outcome } from '../fixture.ts';

export interface StartOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Where the output files go (removed once read). */
  readonly dir: string;
  /** Open fds handed to the child as its fds 3, 4, ... in order. */
  readonly extraFds?: readonly number[];
}

export interface Started {
  readonly pid: number;
  /** Exit code (128 + signal number when killed by a signal), stdout and stderr. */
  readonly outcome: Promise<Outcome>;
}

export function startToFiles(bin: string, argv: readonly string[], o: StartOptions): Started {
  const tag = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const outPath = path.join(o.dir, `.out-${tag}`);
  const errPath = path.join(o.dir, `.err-${tag}`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  const child = spawn(bin, argv, { env: o.env, cwd: o.cwd, stdio: ['ignore', out, err, ...(o.extraFds ?? [])] });
  closeSync(out);
  closeSync(err);
  if (child.pid === undefined) throw new Error(`could not start ${bin}`);
  const outcome = new Promise<Outcome>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
      const result = { exitCode, stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8') };
      rmSync(outPath, { force: true });
      rmSync(errPath, { force: true });
      resolve(result);
    });
  });
  return { pid: child.pid, outcome };
}

/** Polls `check` until it returns a value other than undefined; throws after `what` never came. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, attempts = 400): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}
