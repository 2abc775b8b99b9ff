// A program run to its end without blocking the test's own process (where a stand-in daemon lives),
// with only PATH and the given variables in its environment.
import { spawn } from 'node:child_process';

export interface ProgramRun {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function runProgram(program: string, args: readonly string[], o: { env?: Record<string, string>; cwd: string; started?: (pid: number) => void }): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: o.cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...o.env } });
    if (child.pid !== undefined) o.started?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}
