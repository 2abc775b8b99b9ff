// User-namespace fds carrying a given id mapping, for idmapped mounts.
//
// A child is created with clone(CLONE_NEWUSER) that only waits to be killed:
// the child never returns into Node/V8 code, so the usual "no fork() in a
// multithreaded runtime" hazard does not apply, and there is no helper binary
// to exec and no readiness polling (clone returns once the namespace exists).
//
// Where the architecture has a pause(2) syscall (x86_64), the child shares the
// manager's memory (CLONE_VM, as vfork does): copying the page tables of a
// ~90 MB Node process at clone and tearing them down at the child's exit cost
// 5-10 ms per namespace (two per container), against ~0.4 ms shared. Such a
// child must not write the memory it shares: its body is glibc's syscall()
// making the raw pause(2) (glibc's pause() would mark the parent thread's
// cancellation state), and it starts with every signal blocked (so no signal
// handler of the manager's ever runs in it) until SIGKILL ends it.
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  CLONE_FILES, CLONE_NEWUSER, CLONE_VM, O_CLOEXEC, O_RDONLY, SIGCHLD, SIGKILL, SIGSET_SIZE, SIG_SETMASK, SyscallError, fromNodeError, libc, sysFail,
} from './libc.ts';
import { faultPoint } from '../testing/fault.ts';

export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

const EINVAL = 22;
const EINTR = 4;
const MAX_EXTENTS = 340;
const MAX_ID = 0xffffffff;
const STACK_SIZE = 64 * 1024;

let stackTop: bigint | undefined;

function childStackTop(): bigint {
  // One buffer serves every clone: a child runs on its own copy of it (no
  // CLONE_VM) or is reaped before the next child starts (CLONE_VM).
  // 64 bytes below the end: glibc's syscall() reads a sixth argument just above its frame.
  stackTop ??= (libc().allocNative(STACK_SIZE) + BigInt(STACK_SIZE - 64)) & ~15n;
  return stackTop;
}

/** "containerID hostID size\n" lines, as /proc/<pid>/uid_map expects them. */
export function formatIdMap(maps: readonly IdMap[], file: string): string {
  if (maps.length === 0 || maps.length > MAX_EXTENTS) {
    throw new SyscallError('write', file, EINVAL, `need 1..${MAX_EXTENTS} mappings, got ${maps.length}`);
  }
  return maps
    .map((m) => {
      for (const v of [m.containerID, m.hostID, m.size]) {
        if (!Number.isInteger(v) || v < 0 || v > MAX_ID) {
          throw new SyscallError('write', file, EINVAL, `invalid mapping ${m.containerID} ${m.hostID} ${m.size}`);
        }
      }
      return `${m.containerID} ${m.hostID} ${m.size}\n`;
    })
    .join('');
}

function writeProcFile(file: string, content: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'w');
  } catch (err) {
    throw fromNodeError(err, 'open', file);
  }
  try {
    // The kernel takes the whole map in one write() of less than a page.
    const buf = Buffer.from(content);
    if (writeSync(fd, buf) !== buf.length) throw new SyscallError('write', file, EINVAL, 'short write');
  } catch (err) {
    throw fromNodeError(err, 'write', file);
  } finally {
    closeSync(fd);
  }
}

/**
 * Returns an O_RDONLY|O_CLOEXEC fd of a new user namespace with exactly these
 * mappings (setgroups stays "allow"). Synchronous, well under a millisecond.
 */
export function createUserNamespaceFd(uidMap: readonly IdMap[], gidMap: readonly IdMap[]): number {
  const uidText = formatIdMap(uidMap, 'uid_map');
  const gidText = formatIdMap(gidMap, 'gid_map');
  const c = libc();
  const pid = cloneParkedChild();
  if (pid === -1) throw sysFail('clone', 'CLONE_NEWUSER');
  try {
    faultPoint('userns:cloned');
    writeProcFile(`/proc/${pid}/uid_map`, uidText);
    // A writer with CAP_SETGID in the parent namespace may map gids without
    // first writing "deny" to setgroups.
    writeProcFile(`/proc/${pid}/gid_map`, gidText);
    const nsPath = `/proc/${pid}/ns/user`;
    const fd = c.open(nsPath, O_RDONLY | O_CLOEXEC, 0);
    if (fd === -1) throw sysFail('open', nsPath);
    return fd;
  } finally {
    reap(pid);
  }
}

/**
 * clone(CLONE_NEWUSER) of a child that waits to be killed; -1 (errno set) on failure.
 * CLONE_FILES: share the fd table rather than hold copies of every fd (sockets, pipe ends) for
 * the child's lifetime. The child is reaped before the next one starts: one stack serves all.
 */
export function cloneParkedChild(): number {
  const c = libc();
  if (c.pauseSyscall === undefined) return c.clone(c.pauseAddress, childStackTop(), CLONE_NEWUSER | CLONE_FILES | SIGCHLD, null);
  // The child inherits this thread's signal mask at clone; the thread gets its own back at once.
  const all = Buffer.alloc(SIGSET_SIZE, 0xff);
  const saved = Buffer.alloc(SIGSET_SIZE);
  if (c.sigprocmask(SIG_SETMASK, all, saved) === -1) throw sysFail('sigprocmask', 'SIG_SETMASK');
  try {
    return c.clone(c.syscallAddress, childStackTop(), CLONE_NEWUSER | CLONE_VM | CLONE_FILES | SIGCHLD, BigInt(c.pauseSyscall));
  } finally {
    c.sigprocmask(SIG_SETMASK, saved, null);
  }
}

export function reap(pid: number): void {
  const c = libc();
  c.kill(pid, SIGKILL);
  while (c.waitpid(pid, null, 0) === -1) {
    if (c.errno() !== EINTR) break;
  }
}
