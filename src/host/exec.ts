// Replace the running Node process with another program (execve), the way a
// shell's `exec` would: same pid, the caller's fds and default signal state.
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import path from 'node:path';
import {
  F_GETFD, F_GETFL, F_SETFD, F_SETFL, FD_CLOEXEC, O_NONBLOCK,
  SIG_SETMASK, SIGPIPE, SIGSET_SIZE, SIGXFSZ, libc, sysFail,
  type Libc, type Pointer,
} from './libc.ts';

export interface ExecOptions {
  /**
   * fds 0..keepFds-1 are passed to the new program. Default, like runc counts
   * them: 3 + $LISTEN_FDS (when $LISTEN_PID is us) + the argv's --preserve-fds N.
   */
  keepFds?: number;
}

export class ExecutableNotFoundError extends Error {
  readonly code = 'ENOENT';
  readonly file: string;

  constructor(file: string) {
    super(`${file}: executable file not found in $PATH`);
    this.name = 'ExecutableNotFoundError';
    this.file = file;
  }
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** execvp-style lookup: names without a slash are searched in the caller's $PATH. */
export function lookPath(file: string, searchPath = process.env['PATH'] ?? DEFAULT_PATH): string {
  if (file.includes('/')) return file;
  for (const dir of searchPath.split(':')) {
    const candidate = path.join(dir === '' ? '.' : dir, file);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new ExecutableNotFoundError(file);
}

function isExecutableFile(candidate: string): boolean {
  try {
    if (!statSync(candidate).isFile()) return false;
    accessSync(candidate, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function envList(env: Record<string, string | undefined> | NodeJS.ProcessEnv): string[] {
  const list: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined) list.push(`${key}=${value}`);
  }
  return list;
}

/** Number of leading fds runc hands to the container: stdio + LISTEN_FDS + --preserve-fds. */
export function runcFdCount(argv: readonly string[], env: Record<string, string | undefined>): number {
  let count = 3;
  const listenFds = Number(env['LISTEN_FDS']);
  if (env['LISTEN_PID'] === String(process.pid) && Number.isInteger(listenFds) && listenFds > 0) count += listenFds;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') break;
    let value: string | undefined;
    if (arg === '--preserve-fds') value = argv[i + 1];
    else if (arg?.startsWith('--preserve-fds=')) value = arg.slice('--preserve-fds='.length);
    const n = Number(value);
    if (value !== undefined && Number.isInteger(n) && n > 0) count += n;
  }
  return count;
}

interface SavedState {
  pipe: Pointer;
  xfsz: Pointer;
  mask: Buffer | null;
  cloexec: number[];
  nonblock: number[];
}

export function execReplace(
  file: string,
  argv: string[],
  env: Record<string, string | undefined> | NodeJS.ProcessEnv,
  opts: ExecOptions = {},
): never {
  const resolved = lookPath(file);
  const envp = envList(env);
  const keepFds = opts.keepFds ?? runcFdCount(argv, env);
  const c = libc();
  const saved: SavedState = { pipe: null, xfsz: null, mask: null, cloexec: [], nonblock: [] };
  try {
    prepareForExec(c, keepFds, saved);
    c.execve(resolved, [...argv, null], [...envp, null]);
    throw sysFail('execve', resolved);
  } catch (err) {
    restoreAfterFailedExec(c, saved);
    throw err;
  }
}

function prepareForExec(c: Libc, keepFds: number, saved: SavedState): void {
  // Node sets SIGPIPE/SIGXFSZ to SIG_IGN, and ignored dispositions survive execve.
  saved.pipe = c.signal(SIGPIPE, null);
  saved.xfsz = c.signal(SIGXFSZ, null);
  const mask = Buffer.alloc(SIGSET_SIZE);
  if (c.sigprocmask(SIG_SETMASK, Buffer.alloc(SIGSET_SIZE), mask) === -1) throw sysFail('sigprocmask');
  saved.mask = mask;
  // Node's startup (uv_disable_stdio_inheritance) marks every inherited fd up to
  // the first gap above 15 close-on-exec: undo that for the fds we pass on.
  for (let fd = 0; fd < keepFds; fd++) {
    const flags = c.fcntl(fd, F_GETFD, 0);
    if (flags === -1 || (flags & FD_CLOEXEC) === 0) continue;
    if (c.fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) === -1) throw sysFail('fcntl F_SETFD', `fd ${fd}`);
    saved.cloexec.push(fd);
  }
  // libuv makes stdio pipes non-blocking once process.stdin/stdout are touched and
  // only undoes that on a normal exit; the flag lives on the shared file description.
  for (let fd = 0; fd < 3; fd++) {
    const flags = c.fcntl(fd, F_GETFL, 0);
    if (flags === -1 || (flags & O_NONBLOCK) === 0) continue;
    if (c.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) === -1) throw sysFail('fcntl F_SETFL', `fd ${fd}`);
    saved.nonblock.push(fd);
  }
}

function restoreAfterFailedExec(c: Libc, saved: SavedState): void {
  if (saved.pipe !== null) c.signal(SIGPIPE, saved.pipe);
  if (saved.xfsz !== null) c.signal(SIGXFSZ, saved.xfsz);
  if (saved.mask) c.sigprocmask(SIG_SETMASK, saved.mask, null);
  for (const fd of saved.cloexec) c.fcntl(fd, F_SETFD, c.fcntl(fd, F_GETFD, 0) | FD_CLOEXEC);
  for (const fd of saved.nonblock) c.fcntl(fd, F_SETFL, c.fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}
