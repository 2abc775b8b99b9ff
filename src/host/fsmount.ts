// Filesystem contexts of the new mount API: fsopen, fsconfig, fsmount
// (attached with move_mount from mount.ts). Parameters go one by one through
// fsconfig, so there is no single page-sized option string as with mount(2).
import { readSync } from 'node:fs';
import { loadKoffi } from './koffi-module.ts';
import { SyscallError, libc } from './libc.ts';
import { moveMountTo } from './mount.ts';

export const FSOPEN_CLOEXEC = 1;
export const FSMOUNT_CLOEXEC = 1;

const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_SET_FD = 5;
const FSCONFIG_CMD_CREATE = 6;

/** fsconfig copies string values with strndup_user(value, 256): longer ones fail. */
export const FSCONFIG_MAX_STRING = 255;

const SYSCALLS: Readonly<Record<string, { fsopen: number; fsconfig: number; fsmount: number }>> = {
  x64: { fsopen: 430, fsconfig: 431, fsmount: 432 },
  arm64: { fsopen: 430, fsconfig: 431, fsmount: 432 },
};

interface FsmountLib {
  fsopen(fsType: string, flags: number): number;
  fsconfig(fd: number, cmd: number, key: string | null, value: string | null, aux: number): number;
  fsmount(fd: number, flags: number, attrFlags: number): number;
  errno(): number;
}

let loaded: FsmountLib | undefined;

function lib(): FsmountLib {
  if (loaded) return loaded;
  const nr = SYSCALLS[process.arch];
  if (!nr) throw new Error(`sysrunc host layer: unsupported architecture ${process.arch}`);
  libc();
  const koffi = loadKoffi();
  const syscall = koffi.load('libc.so.6').func('long syscall(long number, ...)');
  loaded = {
    fsopen: (t, f) => Number(syscall(nr.fsopen, 'const char *', t, 'unsigned int', f)),
    fsconfig: (fd, cmd, key, value, aux) =>
      Number(syscall(nr.fsconfig, 'int', fd, 'unsigned int', cmd, 'const char *', key, 'const char *', value, 'int', aux)),
    fsmount: (fd, f, a) => Number(syscall(nr.fsmount, 'int', fd, 'unsigned int', f, 'unsigned int', a)),
    errno: () => koffi.errno(),
  };
  return loaded;
}

/** Drains the messages the filesystem logged on its context fd ("e overlay: ..."). */
export function readFsContextLog(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(4096);
  for (let i = 0; i < 64; i++) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch {
      break; // ENODATA: log empty
    }
    if (n <= 0) break;
    out.push(buf.subarray(0, n).toString('utf8').trim());
  }
  return out;
}

function fail(fd: number, syscall: string, what: string): SyscallError {
  const errno = lib().errno();
  const log = readFsContextLog(fd);
  const text = libc().strerror(errno);
  return new SyscallError(syscall, what, errno, log.length > 0 ? `${text}; ${log.join('; ')}` : text);
}

export type FsParam =
  | { key: string; value: string }
  | { key: string; fd: number }
  | { key: string; flag: true };

/** Context fd for a new superblock of fsType (close-on-exec). */
export function fsopen(fsType: string): number {
  const fd = lib().fsopen(fsType, FSOPEN_CLOEXEC);
  if (fd === -1) throw new SyscallError('fsopen', fsType, lib().errno());
  return fd;
}

export function fsconfig(fd: number, fsType: string, param: FsParam): void {
  const x = lib();
  let rc: number;
  let what: string;
  if ('value' in param) {
    what = `${fsType} ${param.key}=${param.value}`;
    if (Buffer.byteLength(param.value) > FSCONFIG_MAX_STRING) {
      throw new SyscallError('fsconfig', what, 7 /* E2BIG */, `value longer than ${FSCONFIG_MAX_STRING} bytes`);
    }
    rc = x.fsconfig(fd, FSCONFIG_SET_STRING, param.key, param.value, 0);
  } else if ('fd' in param) {
    what = `${fsType} ${param.key}=<fd ${param.fd}>`;
    rc = x.fsconfig(fd, FSCONFIG_SET_FD, param.key, null, param.fd);
  } else {
    what = `${fsType} ${param.key}`;
    rc = x.fsconfig(fd, FSCONFIG_SET_FLAG, param.key, null, 0);
  }
  if (rc === -1) throw fail(fd, 'fsconfig', what);
}

/** Creates the superblock and returns a detached mount fd for it. */
export function fsmountCreate(fd: number, fsType: string, label: string): number {
  const x = lib();
  if (x.fsconfig(fd, FSCONFIG_CMD_CREATE, null, null, 0) === -1) throw fail(fd, 'fsconfig', `${fsType} create ${label}`);
  const mfd = x.fsmount(fd, FSMOUNT_CLOEXEC, 0);
  if (mfd === -1) throw fail(fd, 'fsmount', `${fsType} ${label}`);
  return mfd;
}

/** fsopen + fsconfig(each param) + create + fsmount + move_mount onto target. */
export function mountFs(fsType: string, params: FsParam[], target: string): void {
  const fd = fsopen(fsType);
  try {
    for (const p of params) fsconfig(fd, fsType, p);
    const mfd = fsmountCreate(fd, fsType, target);
    try {
      moveMountTo(mfd, target);
    } finally {
      libc().close(mfd);
    }
  } finally {
    libc().close(fd);
  }
}
