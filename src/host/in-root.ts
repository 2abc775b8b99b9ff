// Paths inside a container rootfs, resolved on the host the way runc resolves mount destinations:
// symlinks and ".." never leave the rootfs (openat2 RESOLVE_IN_ROOT). The image and, after a run,
// the container itself control every symlink in there; following one with a plain host path walk
// would let an image make the manager read or write host files.
import { closeSync, constants as fsConstants, fstatSync, lstatSync, mkdirSync, openSync, readSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { SyscallError, fromNodeError } from './libc.ts';
import { ENOENT, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV, openat2, tryOpenat2 } from './fs-native.ts';

const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
const MAX_SYMLINKS = 40;

/** An open rootfs; close() when done. */
export class Rootfs {
  readonly fd: number;
  /** The rootfs' canonical host path. */
  readonly real: string;

  constructor(readonly hostPath: string) {
    try {
      this.fd = openSync(hostPath, O_PATH | fsConstants.O_DIRECTORY);
    } catch (err) {
      throw fromNodeError(err, 'open', hostPath);
    }
    this.real = readlinkSync(`/proc/self/fd/${this.fd}`);
  }

  close(): void {
    closeSync(this.fd);
  }

  label(inRoot: string): string {
    return path.join(this.hostPath, inRoot);
  }

  /** fd of inRoot (an absolute in-container path), or undefined if it does not exist. */
  open(inRoot: string, flags: number): number | undefined {
    try {
      return openat2(this.fd, relative(inRoot), flags, IN_ROOT, this.label(inRoot));
    } catch (err) {
      if (err instanceof SyscallError && err.errno === ENOENT) return undefined;
      throw err;
    }
  }

  /**
   * Whether inRoot (an absolute in-container path) names something, its symlinks followed inside
   * the rootfs (mounts below it crossed, as a lookup in the container would). Any failure is "no".
   */
  exists(inRoot: string): boolean {
    const fd = tryOpenat2(this.fd, relative(inRoot), O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd === -1) return false;
    closeSync(fd);
    return true;
  }

  /** The in-container path an fd opened below the rootfs stands for. */
  inRootPathOf(fd: number): string {
    const host = readlinkSync(`/proc/self/fd/${fd}`);
    if (host === this.real) return '/';
    if (this.real === '/') return host;
    if (!host.startsWith(`${this.real}/`)) {
      throw new SyscallError('openat2', host, 18 /* EXDEV */, `resolved outside the rootfs ${this.real}`);
    }
    return host.slice(this.real.length);
  }

  /**
   * The symlink-free in-container path that `inRoot` names, whether or not it exists: existing
   * prefixes are resolved in root, a dangling symlink is followed to where it points.
   */
  resolve(inRoot: string, depth = 0): string {
    if (depth > MAX_SYMLINKS) throw new SyscallError('openat2', this.label(inRoot), 40 /* ELOOP */);
    const norm = path.posix.resolve('/', inRoot);
    if (norm === '/') return '/';
    const fd = this.open(norm, O_PATH);
    if (fd !== undefined) {
      try {
        return this.inRootPathOf(fd);
      } finally {
        closeSync(fd);
      }
    }
    const parent = this.resolve(path.posix.dirname(norm), depth);
    const name = path.posix.basename(norm);
    const candidate = path.posix.join(parent, name);
    const parentFd = this.open(parent, O_PATH | fsConstants.O_DIRECTORY);
    if (parentFd === undefined) return candidate;
    try {
      const entry = `/proc/self/fd/${parentFd}/${name}`;
      let isLink = false;
      try {
        isLink = lstatSync(entry).isSymbolicLink();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'lstat', this.label(candidate));
      }
      if (!isLink) return candidate;
      const target = readlinkSync(entry);
      return this.resolve(path.posix.resolve(parent, target), depth + 1);
    } finally {
      closeSync(parentFd);
    }
  }

  /** O_PATH fd of directory inRoot (symlink-free), creating missing components as root-owned 0755 dirs. */
  openDirCreating(inRoot: string): number {
    const norm = path.posix.resolve('/', inRoot);
    const existing = this.open(norm, O_PATH | fsConstants.O_DIRECTORY);
    if (existing !== undefined) return existing;
    const parentFd = this.openDirCreating(path.posix.dirname(norm));
    try {
      const dir = `/proc/self/fd/${parentFd}/${path.posix.basename(norm)}`;
      try {
        mkdirSync(dir, { mode: 0o755 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(err, 'mkdir', this.label(norm));
      }
    } finally {
      closeSync(parentFd);
    }
    const fd = this.open(norm, O_PATH | fsConstants.O_DIRECTORY);
    if (fd === undefined) throw new SyscallError('openat2', this.label(norm), ENOENT, 'vanished right after mkdir');
    return fd;
  }

  /**
   * A read-only fd of regular file inRoot, or undefined if it does not exist. The image decides
   * what is there: a FIFO, a tty or a watchdog device would act on being opened (block, become the
   * manager's controlling terminal, arm a timer), so the entry is opened O_PATH first, its type
   * checked on that fd, and only a regular file is opened for reading, through that same fd (the
   * inode fstat saw). maxBytes caps the size fstat reports; readers must still cap what they read.
   */
  openRegularFile(inRoot: string, maxBytes: number): number | undefined {
    const pathFd = this.open(inRoot, O_PATH);
    if (pathFd === undefined) return undefined;
    try {
      const st = fstatSync(pathFd);
      if (!st.isFile()) throw new SyscallError('open', this.label(inRoot), 22 /* EINVAL */, 'not a regular file');
      if (st.size > maxBytes) throw new SyscallError('open', this.label(inRoot), 27 /* EFBIG */, `larger than ${maxBytes} bytes`);
      return openSync(`/proc/self/fd/${pathFd}`, fsConstants.O_RDONLY | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw fromNodeError(err, 'open', this.label(inRoot));
    } finally {
      closeSync(pathFd);
    }
  }

  /** Content of regular file inRoot (see openRegularFile), or undefined if it does not exist. */
  readFile(inRoot: string, maxBytes: number): Buffer | undefined {
    const fd = this.openRegularFile(inRoot, maxBytes);
    if (fd === undefined) return undefined;
    try {
      return readCapped(fd, maxBytes, this.label(inRoot));
    } catch (err) {
      throw fromNodeError(err, 'read', this.label(inRoot));
    } finally {
      closeSync(fd);
    }
  }
}

/** Reads fd to its end, refusing more than maxBytes. */
function readCapped(fd: number, maxBytes: number, label: string): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, 1024 * 1024));
  for (;;) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, maxBytes + 1 - total), null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    total += n;
    if (total > maxBytes) throw new SyscallError('read', label, 27 /* EFBIG */, `larger than ${maxBytes} bytes`);
  }
  return Buffer.concat(chunks, total);
}

function relative(inRoot: string): string {
  const rel = path.posix.resolve('/', inRoot).slice(1);
  return rel === '' ? '.' : rel;
}

/** Runs fn with the rootfs open. */
export function withRootfsSync<T>(hostPath: string, fn: (r: Rootfs) => T): T {
  const r = new Rootfs(hostPath);
  try {
    return fn(r);
  } finally {
    r.close();
  }
}

/** Runs fn with the rootfs open. */
export async function withRootfs<T>(hostPath: string, fn: (r: Rootfs) => Promise<T> | T): Promise<T> {
  const r = new Rootfs(hostPath);
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}
