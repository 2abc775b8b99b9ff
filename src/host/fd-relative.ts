// Path operations relative to an open directory fd (through /proc/self/fd/<fd>/<name>), none of
// which follows a symlink: a walk built on them never leaves the tree it started in, even when a
// directory is swapped for a symlink mid-walk. Names are Buffers: a file name need not be UTF-8.
import { chmodSync, closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import path from 'node:path';
import { O_PATH, SyscallError, fromNodeError } from './libc.ts';
import { pinPath } from './pinned-path.ts';
import { lgetxattr, llistxattr, lsetxattr } from './xattr.ts';

export const O_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
export const ESTALE = 116;
const ENOTSUP = 95;

const SLASH = Buffer.from('/');
export const DOT = Buffer.from('.');

export function procPath(dirFd: number, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), name]);
}

export function joinRel(rel: Buffer, name: Buffer): Buffer {
  return rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]);
}

export function shownPath(root: string, rel: Buffer): string {
  return rel.length === 0 ? root : path.join(root, rel.toString('utf8'));
}

export function relabel(err: unknown, shown: string): unknown {
  return err instanceof SyscallError ? new SyscallError(err.syscall, shown, err.errno) : err;
}

export function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}

export function lstatAt(op: Buffer, shown: string): Stats | undefined {
  try {
    return lstatSync(op);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined; // removed since readdir
    throw fromNodeError(err, 'lstat', shown);
  }
}

/** Opens a directory without following a symlink and checks it is the inode lstat saw. */
export function openDirAt(op: Buffer | string, shown: string, expect?: Stats, flags = O_DIR_NOFOLLOW): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(op, flags);
  } catch (err) {
    throw fromNodeError(err, 'open', shown);
  }
  const st = fstatSync(fd);
  if (expect && (st.dev !== expect.dev || st.ino !== expect.ino)) {
    closeSync(fd);
    throw new SyscallError('open', shown, ESTALE, 'directory replaced during the walk');
  }
  return { fd, st };
}

/** chmod that cannot be redirected by a symlink swapped in after lstat. */
export function chmodNoFollow(op: Buffer, shown: string, expect: Stats, mode: number): void {
  let fd: number;
  try {
    fd = openSync(op, O_PATH | constants.O_NOFOLLOW);
  } catch (err) {
    throw fromNodeError(err, 'open', shown);
  }
  try {
    const st = fstatSync(fd);
    if (st.dev !== expect.dev || st.ino !== expect.ino || st.isSymbolicLink()) {
      throw new SyscallError('chmod', shown, ESTALE, 'entry replaced during the walk');
    }
    chmodSync(`/proc/self/fd/${fd}`, mode);
  } catch (err) {
    throw err instanceof SyscallError ? err : fromNodeError(err, 'chmod', shown);
  } finally {
    closeSync(fd);
  }
}

export function listXattrs(op: Buffer, shown: string): string[] {
  try {
    return llistxattr(op);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOTSUP) return [];
    throw relabel(err, shown);
  }
}

export function getXattr(op: Buffer, name: string, shown: string): Buffer | undefined {
  try {
    return lgetxattr(op, name);
  } catch (err) {
    throw relabel(err, shown);
  }
}

export function setXattr(op: Buffer, name: string, value: Buffer, shown: string): void {
  try {
    lsetxattr(op, name, value);
  } catch (err) {
    throw relabel(err, `${shown} (${name})`);
  }
}

export function splitRel(rel: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i === rel.length || rel[i] === 0x2f) {
      if (i > start) parts.push(rel.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

/** fd of root/parts..., each component opened without following symlinks; undefined if it is gone. */
export function openDirChain(root: string, parts: Buffer[], shown: string): number | undefined {
  const pinned = pinPath(root, 'chown');
  let fd: number;
  try {
    fd = openDirAt(`/proc/self/fd/${pinned.fd}`, root, pinned.stat, constants.O_RDONLY | constants.O_DIRECTORY).fd;
  } finally {
    closeSync(pinned.fd);
  }
  for (const part of parts) {
    let next: number;
    try {
      next = openSync(procPath(fd, part), O_DIR_NOFOLLOW);
    } catch (err) {
      closeSync(fd);
      if (isCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
      throw fromNodeError(err, 'open', shown);
    }
    closeSync(fd);
    fd = next;
  }
  return fd;
}
