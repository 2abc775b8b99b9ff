// Extended attributes of a path without following a final symlink
// (lgetxattr/lsetxattr/llistxattr/lremovexattr); Node has no binding for them.
import { loadKoffi } from './koffi-module.ts';
import { SyscallError, libc } from './libc.ts';

const ENODATA = 61;
const ERANGE = 34;

/** setxattr flags */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** A path as text, or as raw bytes for names that are not valid UTF-8. */
export type XattrPath = string | Buffer;

interface XattrLib {
  lgetxattr(path: XattrPath, name: string, value: Buffer | null, size: number): number;
  lsetxattr(path: XattrPath, name: string, value: Buffer, size: number, flags: number): number;
  llistxattr(path: XattrPath, list: Buffer | null, size: number): number;
  lremovexattr(path: XattrPath, name: string): number;
  errno(): number;
}

let loaded: XattrLib | undefined;

function lib(): XattrLib {
  if (loaded) return loaded;
  // libc() first so SyscallError messages carry strerror() text.
  libc();
  const koffi = loadKoffi();
  const c = koffi.load('libc.so.6');
  const lgetxattr = c.func('long lgetxattr(const char *path, const char *name, void *value, size_t size)');
  const lsetxattr = c.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
  const llistxattr = c.func('long llistxattr(const char *path, void *list, size_t size)');
  const lremovexattr = c.func('int lremovexattr(const char *path, const char *name)');
  loaded = {
    lgetxattr: (p, n, v, s) => Number(lgetxattr(p, n, v, s)),
    lsetxattr: (p, n, v, s, f) => Number(lsetxattr(p, n, v, s, f)),
    llistxattr: (p, l, s) => Number(llistxattr(p, l, s)),
    lremovexattr: (p, n) => Number(lremovexattr(p, n)),
    errno: () => koffi.errno(),
  };
  return loaded;
}

function fail(op: string, path: XattrPath, name?: string): SyscallError {
  const x = lib();
  const shown = typeof path === 'string' ? path : path.toString('utf8');
  return new SyscallError(op, name === undefined ? shown : `${shown} (${name})`, x.errno());
}

// koffi passes a Buffer as a raw pointer: it needs its own NUL terminator.
function cPath(path: XattrPath): XattrPath {
  return typeof path === 'string' ? path : Buffer.concat([path, Buffer.from([0])]);
}

/** Value of xattr `name` on path (symlinks not followed); undefined if it is not set. */
export function lgetxattr(path: XattrPath, name: string): Buffer | undefined {
  const x = lib();
  const p = cPath(path);
  // Size query then read; retried because the value can grow in between.
  for (;;) {
    const size = x.lgetxattr(p, name, null, 0);
    if (size === -1) {
      if (x.errno() === ENODATA) return undefined;
      throw fail('lgetxattr', path, name);
    }
    const buf = Buffer.alloc(size);
    const got = size === 0 ? 0 : x.lgetxattr(p, name, buf, size);
    if (got >= 0) return buf.subarray(0, got);
    const errno = x.errno();
    if (errno === ENODATA) return undefined;
    if (errno !== ERANGE) throw fail('lgetxattr', path, name);
  }
}

export function lsetxattr(path: XattrPath, name: string, value: Buffer, flags = 0): void {
  const x = lib();
  if (x.lsetxattr(cPath(path), name, value, value.length, flags) === -1) throw fail('lsetxattr', path, name);
}

/** Names of all xattrs on path (symlinks not followed). */
export function llistxattr(path: XattrPath): string[] {
  const x = lib();
  const p = cPath(path);
  for (;;) {
    const size = x.llistxattr(p, null, 0);
    if (size === -1) throw fail('llistxattr', path);
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = x.llistxattr(p, buf, size);
    if (got >= 0) return buf.subarray(0, got).toString('utf8').split('\0').filter((n) => n !== '');
    if (x.errno() !== ERANGE) throw fail('llistxattr', path);
  }
}

/** Removes xattr `name`; a missing attribute is not an error. */
export function lremovexattr(path: XattrPath, name: string): void {
  const x = lib();
  if (x.lremovexattr(cPath(path), name) === -1 && x.errno() !== ENODATA) throw fail('lremovexattr', path, name);
}
