// One way to run a host CLI (docker, ctr, runc) from the rig, with a uniform result shape.
import { constants } from 'node:os';
import { execa } from 'execa';

export interface ExecOptions {
  /** Data for the child's stdin. */
  input?: string;
  /** File streamed to the child's stdin. */
  inputFile?: string;
  /** Throw on a non-zero exit (default true). */
  reject?: boolean;
  /** Kill the child (SIGTERM, then SIGKILL 5 s later) after this long; default 120 s. */
  timeoutMs?: number;
  /** Extra environment for this call. */
  env?: Record<string, string>;
}

export interface ExecResult {
  /** Exit status; 128 + signal number when killed by a signal (like a shell). */
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function execTool(
  file: string,
  args: readonly string[],
  baseEnv: Record<string, string | undefined>,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const r = await execa(file, args, {
    env: { ...baseEnv, ...opts.env },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.inputFile !== undefined ? { inputFile: opts.inputFile } : {}),
    ...(opts.input === undefined && opts.inputFile === undefined ? { stdin: 'ignore' as const } : {}),
    reject: opts.reject ?? true,
    timeout: opts.timeoutMs ?? 120_000,
    forceKillAfterDelay: 5000,
  });
  const exitCode = r.exitCode ?? 128 + (r.signal !== undefined ? constants.signals[r.signal] : 0);
  return { exitCode, stdout: r.stdout, stderr: r.stderr };
}
