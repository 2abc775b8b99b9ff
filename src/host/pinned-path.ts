// A host path resolved once and then held as an O_PATH fd: every later use (open_tree, the chown
// walk, the host-system-path check) goes through the fd, so a parent directory swapped for a
// symlink after the path was resolved cannot redirect it. openat2 with RESOLVE_NO_SYMLINKS refuses
// a path with any symlink in it: the path handed in is already symlink-free (realpath'd when the
// facts were gathered), so a symlink found now was put there since.
import { closeSync, fstatSync, readlinkSync, type Stats } from 'node:fs';
import { fromNodeError, SyscallError } from './libc.ts';
import { AT_FDCWD, O_PATH, openat2, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from './fs-native.ts';

const ELOOP = 40;

export interface PinnedPath {
  /** O_PATH fd of the entry (close-on-exec). */
  readonly fd: number;
  /** The entry's path as the kernel names the fd (/proc/self/fd/N): what it really is now. */
  readonly real: string;
  readonly stat: Stats;
}

/** Opens absolute path p with no symlink in any component; `what` names the use in errors. */
export function pinPath(p: string, what: string): PinnedPath {
  let fd: number;
  try {
    fd = openat2(AT_FDCWD, p, O_PATH, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, p);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ELOOP) {
      throw new SyscallError('openat2', p, ELOOP, `${what}: it or a directory above it is a symlink (swapped since the path was resolved?); refusing to follow it`);
    }
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    // Read from /proc only when asked (the chown checks do; the mounts from the fd do not), and
    // while the fd is open: the callers use a pinned path inside withPinnedPath.
    let real: string | undefined;
    return {
      fd,
      stat,
      get real(): string {
        real ??= realPathOf(fd, p);
        return real;
      },
    };
  } catch (err) {
    closeSync(fd);
    throw fromNodeError(err, 'fstat', p);
  }
}

export function realPathOf(fd: number, label: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    throw fromNodeError(err, 'readlink', `/proc/self/fd/${fd} (${label})`);
  }
}

/** Runs fn with p pinned; the fd is closed afterwards. */
export function withPinnedPath<T>(p: string, what: string, fn: (pinned: PinnedPath) => T): T {
  const pinned = pinPath(p, what);
  try {
    return fn(pinned);
  } finally {
    closeSync(pinned.fd);
  }
}
