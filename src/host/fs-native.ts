// libc entry points the volume copier needs and Node lacks (statx with nanosecond times, xattrs,
// mknod, utimensat, in-kernel data copy, SEEK_DATA/SEEK_HOLE, openat2). Paths are Buffers so
// names that are not UTF-8 survive byte for byte; every call returns the C result (-1 on failure)
// and the caller reads errno() on its next statement.
import { loadKoffi } from './koffi-module.ts';
import { SyscallError, libc } from './libc.ts';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const O_PATH = 0o10000000;
export const SEEK_SET = 0;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_IN_ROOT = 0x10;

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EXDEV = 18;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENODATA = 61;
export const EOPNOTSUPP = 95;
export const ERANGE = 34;

const STATX_BASIC_STATS = 0x7ff;
const STATX_SIZE = 256;
const SYS_OPENAT2 = 437; // same number on x86_64 and arm64
const O_CLOEXEC = 0o2000000;

interface Native {
  statx(dfd: number, path: Buffer, flags: number, mask: number, buf: Buffer): number;
  llistxattr(path: Buffer, list: Buffer | null, size: number): number;
  lgetxattr(path: Buffer, name: Buffer, value: Buffer | null, size: number): number;
  lsetxattr(path: Buffer, name: Buffer, value: Buffer, size: number, flags: number): number;
  lremovexattr(path: Buffer, name: Buffer): number;
  mknod(path: Buffer, mode: number, dev: bigint): number;
  utimensat(dfd: number, path: Buffer, times: Buffer, flags: number): number;
  copyFileRange(fdIn: number, fdOut: number, len: number): number;
  sendfile(outFd: number, inFd: number, count: number): number;
  lseek(fd: number, offset: number, whence: number): number;
  openat2(dfd: number, path: string, how: Buffer): number;
  fchownat(dfd: number, path: string, uid: number, gid: number, flags: number): number;
  errno(): number;
}

let loaded: Native | undefined;

function native(): Native {
  if (loaded) return loaded;
  libc(); // first, so SyscallError messages carry strerror() text
  const koffi = loadKoffi();
  const c = koffi.load('libc.so.6');
  const statx = c.func('int statx(int dfd, const char *path, int flags, unsigned int mask, void *buf)');
  const llistxattr = c.func('long llistxattr(const char *path, void *list, size_t size)');
  const lgetxattr = c.func('long lgetxattr(const char *path, const char *name, void *value, size_t size)');
  const lsetxattr = c.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
  const lremovexattr = c.func('int lremovexattr(const char *path, const char *name)');
  const mknod = c.func('int mknod(const char *path, unsigned int mode, uint64_t dev)');
  const utimensat = c.func('int utimensat(int dfd, const char *path, const void *times, int flags)');
  const copyFileRange = c.func('long copy_file_range(int fdIn, void *offIn, int fdOut, void *offOut, size_t len, unsigned int flags)');
  const sendfile = c.func('long sendfile(int outFd, int inFd, void *offset, size_t count)');
  const lseek = c.func('int64_t lseek(int fd, int64_t offset, int whence)');
  const syscall = c.func('long syscall(long number, ...)');
  const fchownat = c.func('int fchownat(int dfd, const char *path, unsigned int uid, unsigned int gid, int flags)');
  loaded = {
    statx: (dfd, p, flags, mask, buf) => statx(dfd, p, flags, mask, buf) as number,
    llistxattr: (p, list, size) => Number(llistxattr(p, list, size)),
    lgetxattr: (p, name, value, size) => Number(lgetxattr(p, name, value, size)),
    lsetxattr: (p, name, value, size, flags) => lsetxattr(p, name, value, size, flags) as number,
    lremovexattr: (p, name) => lremovexattr(p, name) as number,
    mknod: (p, mode, dev) => mknod(p, mode, dev) as number,
    utimensat: (dfd, p, times, flags) => utimensat(dfd, p, times, flags) as number,
    copyFileRange: (fdIn, fdOut, len) => Number(copyFileRange(fdIn, null, fdOut, null, len, 0)),
    sendfile: (outFd, inFd, count) => Number(sendfile(outFd, inFd, null, count)),
    lseek: (fd, offset, whence) => Number(lseek(fd, offset, whence)),
    openat2: (dfd, p, how) =>
      Number(syscall(SYS_OPENAT2, 'int', dfd, 'const char *', p, 'void *', how, 'size_t', how.length)),
    fchownat: (dfd, p, uid, gid, flags) => fchownat(dfd, p, uid, gid, flags) as number,
    errno: () => koffi.errno(),
  };
  return loaded;
}

/** NUL-terminated copy of a path, as the C calls want it. */
export function cPath(p: Buffer): Buffer {
  const out = Buffer.allocUnsafe(p.length + 1);
  p.copy(out);
  out[p.length] = 0;
  return out;
}

/** Xattr names travel as latin1 strings (one char per byte) so any byte sequence round-trips. */
function cName(name: string): Buffer {
  return cPath(Buffer.from(name, 'latin1'));
}

export function errno(): number {
  return native().errno();
}

/** SyscallError for the call that just failed; `label` is the path as a human should read it. */
export function fail(op: string, label: string): SyscallError {
  return new SyscallError(op, label, errno());
}

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** "dev:ino", identifies hardlinked inodes */
  inode: string;
  size: number;
  blocks: number;
  atimeSec: bigint;
  atimeNsec: number;
  mtimeSec: bigint;
  mtimeNsec: number;
  /** Status change time in ms: moves on every change of content, attributes or xattrs. */
  ctimeMs: number;
  rdevMajor: number;
  rdevMinor: number;
}

const statBuf = Buffer.alloc(STATX_SIZE);

/** lstat with nanosecond times; throws SyscallError('statx', label). */
export function lstatx(p: Buffer, label: string): Stat {
  if (native().statx(AT_FDCWD, cPath(p), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, statBuf) === -1) throw fail('statx', label);
  const b = statBuf;
  return {
    nlink: b.readUInt32LE(16),
    uid: b.readUInt32LE(20),
    gid: b.readUInt32LE(24),
    mode: b.readUInt16LE(28),
    inode: `${b.readUInt32LE(136)}:${b.readUInt32LE(140)}:${b.readBigUInt64LE(32)}`,
    size: Number(b.readBigUInt64LE(40)),
    blocks: Number(b.readBigUInt64LE(48)),
    atimeSec: b.readBigInt64LE(64),
    atimeNsec: b.readUInt32LE(72),
    mtimeSec: b.readBigInt64LE(112),
    mtimeNsec: b.readUInt32LE(120),
    ctimeMs: Number(b.readBigInt64LE(96)) * 1000 + b.readUInt32LE(104) / 1e6,
    rdevMajor: b.readUInt32LE(128),
    rdevMinor: b.readUInt32LE(132),
  };
}

/** Sets atime and mtime of path (a final symlink itself, not its target). */
export function lutimens(p: Buffer, st: Pick<Stat, 'atimeSec' | 'atimeNsec' | 'mtimeSec' | 'mtimeNsec'>, label: string): void {
  const times = Buffer.alloc(32);
  times.writeBigInt64LE(st.atimeSec, 0);
  times.writeBigInt64LE(BigInt(st.atimeNsec), 8);
  times.writeBigInt64LE(st.mtimeSec, 16);
  times.writeBigInt64LE(BigInt(st.mtimeNsec), 24);
  if (native().utimensat(AT_FDCWD, cPath(p), times, AT_SYMLINK_NOFOLLOW) === -1) throw fail('utimensat', label);
}

/** dev_t as glibc's makedev() builds it. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknod(2); returns the errno instead of throwing so callers can handle EPERM for whiteouts. */
export function mknod(p: Buffer, mode: number, major: number, minor: number): number {
  const n = native();
  return n.mknod(cPath(p), mode, makedev(major, minor)) === -1 ? n.errno() : 0;
}

export type Xattrs = Array<[name: string, value: Buffer]>;

/** All extended attributes of path (not following a final symlink), in the kernel's order. */
export function lgetxattrs(p: Buffer, label: string): Xattrs {
  const n = native();
  const cp = cPath(p);
  let names: Buffer;
  for (;;) {
    const size = n.llistxattr(cp, null, 0);
    if (size === -1) {
      if (n.errno() === EOPNOTSUPP) return [];
      throw fail('llistxattr', label);
    }
    if (size === 0) return [];
    names = Buffer.alloc(size);
    const got = n.llistxattr(cp, names, size);
    if (got >= 0) {
      names = names.subarray(0, got);
      break;
    }
    if (n.errno() !== ERANGE) throw fail('llistxattr', label); // ERANGE: the list grew, retry
  }
  const out: Xattrs = [];
  for (const name of names.toString('latin1').split('\0')) {
    if (name === '') continue;
    const value = getOne(cp, name, label);
    if (value !== undefined) out.push([name, value]);
  }
  return out;
}

function getOne(cp: Buffer, name: string, label: string): Buffer | undefined {
  const n = native();
  const cn = cName(name);
  for (;;) {
    const size = n.lgetxattr(cp, cn, null, 0);
    if (size === -1) {
      if (n.errno() === ENODATA) return undefined; // removed since the list was read
      throw fail('lgetxattr', `${label} (${name})`);
    }
    const value = Buffer.alloc(size);
    const got = size === 0 ? 0 : n.lgetxattr(cp, cn, value, size);
    if (got >= 0) return value.subarray(0, got);
    if (n.errno() !== ERANGE) throw fail('lgetxattr', `${label} (${name})`);
  }
}

export function lsetxattr(p: Buffer, name: string, value: Buffer, label: string): void {
  if (native().lsetxattr(cPath(p), cName(name), value, value.length, 0) === -1) throw fail('lsetxattr', `${label} (${name})`);
}

export function lremovexattr(p: Buffer, name: string, label: string): void {
  const n = native();
  if (n.lremovexattr(cPath(p), cName(name)) === -1 && n.errno() !== ENODATA) throw fail('lremovexattr', `${label} (${name})`);
}

const CHUNK = 64 * 1024 * 1024;

/** How copyRange moves data between two filesystems; starts with copy_file_range, learns. */
export interface CopyMethod {
  sendfile: boolean;
}

/**
 * Copies bytes [from, to) of fdIn to the same offsets of fdOut inside the kernel: copy_file_range
 * (same filesystem, may share extents), else sendfile (any pair of filesystems; `method`
 * remembers the switch). Both use and advance the file positions, which this sets unless both
 * are known to be at `from` already (`positioned`).
 */
export function copyRange(fdIn: number, fdOut: number, from: number, to: number, label: string, method: CopyMethod, positioned = false): void {
  const n = native();
  if (!positioned) {
    if (n.lseek(fdIn, from, SEEK_SET) === -1) throw fail('lseek', label);
    if (n.lseek(fdOut, from, SEEK_SET) === -1) throw fail('lseek', label);
  }
  let left = to - from;
  while (left > 0) {
    const want = Math.min(left, CHUNK);
    const done = method.sendfile ? n.sendfile(fdOut, fdIn, want) : n.copyFileRange(fdIn, fdOut, want);
    if (done === -1) {
      const e = n.errno();
      if (e === EINTR) continue;
      if (!method.sendfile && (e === EXDEV || e === EINVAL || e === ENOSYS || e === EOPNOTSUPP)) {
        method.sendfile = true;
        continue;
      }
      throw fail(method.sendfile ? 'sendfile' : 'copy_file_range', label);
    }
    if (done === 0) throw new SyscallError(method.sendfile ? 'sendfile' : 'copy_file_range', label, EINVAL, 'source file shrank while being copied');
    left -= done;
  }
}

/** lseek(SEEK_DATA/SEEK_HOLE); returns -1 where the kernel says ENXIO (no more data). */
export function seek(fd: number, offset: number, whence: number, label: string): number {
  const n = native();
  const r = n.lseek(fd, offset, whence);
  if (r === -1) {
    if (n.errno() === 6 /* ENXIO */) return -1;
    throw fail('lseek', label);
  }
  return r;
}

/**
 * openat2(2) relative to dfd with `resolve` flags (RESOLVE_IN_ROOT: symlinks and ".." stay inside
 * dfd's tree, the way runc resolves mount destinations). Returns the new fd.
 */
export function openat2(dfd: number, p: string, flags: number, resolve: number, label: string): number {
  const fd = tryOpenat2(dfd, p, flags, resolve);
  if (fd === -1) throw fail('openat2', label);
  return fd;
}

/** openat2 as above, -1 with errno() set on failure: no exception where failing is the common answer. */
export function tryOpenat2(dfd: number, p: string, flags: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(0n, 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return native().openat2(dfd, p, how);
}

const O_PATH_DIR = O_PATH | 0o200000 | O_CLOEXEC;
const AT_EMPTY_PATH = 0x1000;

/**
 * chown of dir and of each entry named in it, through one O_PATH fd of dir (no path walk per
 * file, no exception per missing one: entries that do not exist are skipped).
 */
export function chownDirAndEntries(dir: string, names: readonly string[], uid: number, gid: number): void {
  const c = native();
  const fd = libc().open(dir, O_PATH_DIR, 0);
  if (fd === -1) throw fail('open', dir);
  try {
    if (c.fchownat(fd, '', uid, gid, AT_EMPTY_PATH) === -1) throw fail('chown', dir);
    for (const name of names) {
      if (c.fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) === -1 && errno() !== ENOENT) throw fail('chown', `${dir}/${name}`);
    }
  } finally {
    libc().close(fd);
  }
}
