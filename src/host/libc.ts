// Lazily loaded koffi bindings to libc.so.6 plus the error type every host
// operation reports with. Loading koffi costs several ms, so nothing here runs
// at import time: the first call to libc() pays for it.
import { loadKoffi } from './koffi-module.ts';

export type Pointer = bigint | null;

// Raw, typed libc entry points. They return the C result unchanged (-1 on
// failure); read errno with lastErrno()/sysFail() on the very next statement.
export interface Libc {
  openTree(dfd: number, path: string, flags: number): number;
  moveMount(fromDfd: number, fromPath: string, toDfd: number, toPath: string, flags: number): number;
  mountSetattr(dfd: number, path: string, flags: number, attr: Buffer): number;
  statx(dfd: number, path: string, flags: number, mask: number, buf: Buffer): number;
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  /** ioctl(2) of a request that takes no argument (NS_GET_USERNS). */
  ioctl(fd: number, request: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  flock(fd: number, operation: number): number;
  execve(path: string, argv: (string | null)[], envp: (string | null)[]): number;
  signal(sig: number, handler: Pointer): Pointer;
  sigprocmask(how: number, set: Buffer | null, oldset: Buffer | null): number;
  prctl(option: number, arg2: bigint | number): number;
  clone(fn: Pointer, stack: Pointer, flags: number, arg: Pointer): number;
  kill(pid: number, sig: number): number;
  waitpid(pid: number, status: Buffer | null, options: number): number;
  getsockopt(fd: number, level: number, optname: number, optval: Buffer, optlen: Buffer): number;
  inotifyInit1(flags: number): number;
  inotifyAddWatch(fd: number, path: string, mask: number): number;
  inotifyRmWatch(fd: number, wd: number): number;
  poll(fds: Buffer, nfds: number, timeoutMs: number): number;
  /** poll(2) on one of libuv's threads: done gets its result (-1 on failure; that thread's errno is not ours to read). */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number, done: (result: number) => void): void;
  pidfdOpen(pid: number, flags: number): number;
  eventfd(initval: number, flags: number): number;
  strerror(errnum: number): string;
  /** Address of glibc's pause(), used as the body of the userns holder child. */
  pauseAddress: bigint;
  /** Address of glibc's syscall(), the body of a holder child that shares the manager's memory. */
  syscallAddress: bigint;
  /** The pause(2) syscall's number where the architecture has one (x86_64), else undefined. */
  pauseSyscall: number | undefined;
  /** Allocates native memory that is never freed (child stacks). */
  allocNative(size: number): bigint;
  errno(): number;
}

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_NO_AUTOMOUNT = 0x800;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;

export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

/** struct pollfd: int fd; short events; short revents. */
const POLLFD_SIZE = 8;
export const POLLIN = 1;

/** A struct pollfd array asking POLLIN of each fd, for poll() and pollAsync(). */
export function pollfdsIn(fds: readonly number[]): Buffer {
  const buf = Buffer.alloc(POLLFD_SIZE * fds.length);
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, POLLFD_SIZE * i);
    buf.writeInt16LE(POLLIN, POLLFD_SIZE * i + 4);
  });
  return buf;
}

/** The fd and the revents poll() left in entry i of a pollfdsIn array. */
export function pollfdAt(buf: Buffer, i: number): { fd: number; revents: number } {
  return { fd: buf.readInt32LE(POLLFD_SIZE * i), revents: buf.readInt16LE(POLLFD_SIZE * i + 6) };
}

export const OPEN_TREE_CLONE = 1;
export const OPEN_TREE_CLOEXEC = O_CLOEXEC;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOUNT_ATTR_RDONLY = 0x00000001;
export const MOUNT_ATTR_IDMAP = 0x00100000;
export const MOUNT_ATTR_SIZE_VER0 = 32;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17; // asm-generic, shared by x86_64 and aarch64

export const STATX_TYPE = 0x1;
export const STATX_MNT_ID = 0x1000;
export const STATX_ATTR_MOUNT_ROOT = 0x2000;
export const STATX_BUF_SIZE = 256;

export const SIGKILL = 9;
export const SIGPIPE = 13;
export const SIGCHLD = 17;
export const SIGXFSZ = 25;
export const SIG_SETMASK = 2;
export const SIGSET_SIZE = 128; // glibc sigset_t
export const CLONE_VM = 0x100;
export const CLONE_FILES = 0x400;
export const CLONE_NEWUSER = 0x10000000;

// The mount API syscalls were added after the syscall tables were unified, so
// x86_64 and aarch64 share these numbers.
// pause(2) is x86_64's own (aarch64 has none).
const SYSCALLS: Readonly<Record<string, { openTree: number; moveMount: number; mountSetattr: number; pidfdOpen: number; pause?: number }>> = {
  x64: { openTree: 428, moveMount: 429, mountSetattr: 442, pidfdOpen: 434, pause: 34 },
  arm64: { openTree: 428, moveMount: 429, mountSetattr: 442, pidfdOpen: 434 },
};

let loaded: Libc | undefined;
let loadMs = 0;

/** Time spent loading koffi and binding libc, 0 until the first libc() call. */
export function libcLoadMs(): number {
  return loadMs;
}

export function libcLoaded(): boolean {
  return loaded !== undefined;
}

export function libc(): Libc {
  if (loaded) return loaded;
  const start = process.hrtime.bigint();
  loaded = bind();
  loadMs = Number(process.hrtime.bigint() - start) / 1e6;
  return loaded;
}

function bind(): Libc {
  const nr = SYSCALLS[process.arch];
  if (!nr) throw new Error(`sysrunc host layer: unsupported architecture ${process.arch}`);
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  // syscall(2), open(2), fcntl(2), prctl(2) and clone(2) are variadic in glibc.
  const syscall = lib.func('long syscall(long number, ...)');
  const open = lib.func('int open(const char *path, int flags, ...)');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const prctl = lib.func('int prctl(int option, ...)');
  const clone = lib.func('int clone(void *fn, void *stack, int flags, void *arg, ...)');
  const statx = lib.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)');
  const close = lib.func('int close(int fd)');
  const mount = lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
  const umount2 = lib.func('int umount2(const char *target, int flags)');
  const flock = lib.func('int flock(int fd, int operation)');
  const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
  const signal = lib.func('void *signal(int sig, void *handler)');
  const sigprocmask = lib.func('int sigprocmask(int how, const void *set, void *oldset)');
  const kill = lib.func('int kill(int pid, int sig)');
  const waitpid = lib.func('int waitpid(int pid, void *status, int options)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)');
  const inotifyInit1 = lib.func('int inotify_init1(int flags)');
  const inotifyAddWatch = lib.func('int inotify_add_watch(int fd, const char *path, uint32_t mask)');
  const inotifyRmWatch = lib.func('int inotify_rm_watch(int fd, int wd)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const eventfd = lib.func('int eventfd(unsigned int initval, int flags)');
  const strerror = lib.func('const char *strerror(int errnum)');
  const pauseAddress = lib.symbol('pause');
  if (typeof pauseAddress !== 'bigint') throw new Error('libc.so.6: cannot resolve pause()');
  const syscallAddress = lib.symbol('syscall');
  if (typeof syscallAddress !== 'bigint') throw new Error('libc.so.6: cannot resolve syscall()');

  return {
    openTree: (dfd, path, flags) => Number(syscall(nr.openTree, 'int', dfd, 'const char *', path, 'unsigned int', flags)),
    moveMount: (fromDfd, fromPath, toDfd, toPath, flags) =>
      Number(syscall(nr.moveMount, 'int', fromDfd, 'const char *', fromPath, 'int', toDfd, 'const char *', toPath, 'unsigned int', flags)),
    mountSetattr: (dfd, path, flags, attr) =>
      Number(syscall(nr.mountSetattr, 'int', dfd, 'const char *', path, 'unsigned int', flags, 'void *', attr, 'size_t', attr.length)),
    statx: (dfd, path, flags, mask, buf) => statx(dfd, path, flags, mask, buf) as number,
    open: (path, flags, mode) => open(path, flags, 'unsigned int', mode) as number,
    close: (fd) => close(fd) as number,
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg) as number,
    ioctl: (fd, request) => ioctl(fd, request) as number,
    mount: (source, target, fstype, flags, data) => mount(source, target, fstype, flags, data) as number,
    umount2: (target, flags) => umount2(target, flags) as number,
    flock: (fd, operation) => flock(fd, operation) as number,
    execve: (path, argv, envp) => execve(path, argv, envp) as number,
    signal: (sig, handler) => signal(sig, handler) as Pointer,
    sigprocmask: (how, set, oldset) => sigprocmask(how, set, oldset) as number,
    prctl: (option, arg2) => prctl(option, 'unsigned long', arg2) as number,
    clone: (fn, stack, flags, arg) => clone(fn, stack, flags, arg) as number,
    kill: (pid, sig) => kill(pid, sig) as number,
    waitpid: (pid, status, options) => waitpid(pid, status, options) as number,
    getsockopt: (fd, level, optname, optval, optlen) => getsockopt(fd, level, optname, optval, optlen) as number,
    inotifyInit1: (flags) => inotifyInit1(flags) as number,
    inotifyAddWatch: (fd, p, mask) => inotifyAddWatch(fd, p, mask) as number,
    inotifyRmWatch: (fd, wd) => inotifyRmWatch(fd, wd) as number,
    poll: (fds, nfds, timeoutMs) => poll(fds, nfds, timeoutMs) as number,
    pollAsync: (fds, nfds, timeoutMs, done) => {
      poll.async(fds, nfds, timeoutMs, (err: unknown, result: number) => done(err === null || err === undefined ? result : -1));
    },
    pidfdOpen: (pid, flags) => Number(syscall(nr.pidfdOpen, 'int', pid, 'unsigned int', flags)),
    eventfd: (initval, flags) => eventfd(initval, flags) as number,
    strerror: (errnum) => strerror(errnum) as string,
    pauseAddress,
    syscallAddress,
    pauseSyscall: nr.pause,
    allocNative: (size) => koffi.alloc('uint8_t', size) as bigint,
    errno: () => koffi.errno(),
  };
}

/** errno of the last failed libc call on this thread. */
export function lastErrno(): number {
  return libc().errno();
}

/**
 * struct statx of pathname relative to dfd (symlinks not followed, no automount; flags adds e.g.
 * AT_EMPTY_PATH) for mask; undefined where it does not exist, which is common enough (a mount
 * target not made yet) to be answered without building an error. label names it in errors.
 */
export function statxOrMissing(dfd: number, pathname: string, flags: number, mask: number, label: string): Buffer | undefined {
  const buf = Buffer.alloc(STATX_BUF_SIZE);
  if (libc().statx(dfd, pathname, flags | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, mask, buf) === -1) {
    if (lastErrno() === 2 /* ENOENT */) return undefined;
    throw sysFail('statx', label);
  }
  return buf;
}

// asm-generic errno names, indexed by number (shared by x86_64 and aarch64).
const ERRNO_NAMES = (
  '- EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT ENOTBLK EBUSY ' +
  'EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE ' +
  'EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ' +
  'ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME ENOSR ' +
  'ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD ' +
  'EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ ' +
  'EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT ' +
  'EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ' +
  'ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ' +
  'ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED ' +
  'EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON'
).split(' ');

/** 'EPERM' for 1; 'E<n>' for numbers without a name. */
export function errnoName(errno: number): string {
  const name = ERRNO_NAMES[errno];
  return name === undefined || name === '-' ? `E${errno}` : name;
}

function errnoText(errno: number): string {
  // strerror() wording matches what runc/crun print; only used once koffi is up.
  if (loaded) return loaded.strerror(errno);
  return `errno ${errno}`;
}

export class SyscallError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(syscall: string, path: string | undefined, errno: number, detail?: string) {
    const code = errnoName(errno);
    const where = path === undefined ? syscall : `${syscall} ${path}`;
    super(`${where}: ${code} (${detail ?? errnoText(errno)})`);
    this.name = 'SyscallError';
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.path = path;
  }
}

/** Builds the error for a libc call that just returned -1. Call it immediately. */
export function sysFail(syscall: string, path?: string): SyscallError {
  return new SyscallError(syscall, path, lastErrno());
}

/** Converts an error thrown by node:fs into a SyscallError; rethrows anything else. */
export function fromNodeError(err: unknown, syscall: string, path?: string): SyscallError {
  if (err instanceof SyscallError) return err;
  if (err instanceof Error && 'errno' in err && typeof err.errno === 'number') {
    // Node reports negated errno values on POSIX.
    const errno = Math.abs(err.errno);
    if (!loaded) libc();
    return new SyscallError(syscall, path, errno);
  }
  throw err;
}

export function isErrno(err: unknown, code: string): err is SyscallError {
  return err instanceof SyscallError && err.code === code;
}
