// Restores a sidecar's entries (sidecar.ts) into a tree copyTree just filled, one entry at a time:
// whiteouts are created where the tree has no entry of that name, xattrs set on entries it has.
// Memory does not grow with the sidecar. Every entry's directory is opened below the tree's root
// one component at a time, none followed if it is a symlink: the tree holds the image's symlinks,
// and an entry reached through one must not lead the manager outside it.
import { chmodSync, closeSync, lchownSync, openSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { fromNodeError, SyscallError } from '../../host/libc.ts';
import { lsetxattr, lstatx, lutimens, mknod, O_PATH, S_IFCHR, type Stat } from '../../host/fs-native.ts';
import { copyableXattrs, type Whiteout } from './copy-tree.ts';
import type { SidecarEntry } from './sidecar.ts';

const YIELD_EVERY_MS = 20;
// The tree has no such directory (ELOOP: a symlink, never followed).
const SKIPPED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

export interface AppliedSidecar {
  whiteouts: number;
  xattrs: number;
}

/** Applies entries to the tree at dstRoot (a directory path; dstLabel is how messages show it). */
export async function applySidecar(entries: Iterable<SidecarEntry>, dstRoot: string, dstLabel: string): Promise<AppliedSidecar> {
  const done: AppliedSidecar = { whiteouts: 0, xattrs: 0 };
  const rootFd = openDir(dstRoot, dstLabel);
  const dirs = new DirCache(rootFd, dstLabel);
  let lastYield = Date.now();
  try {
    for (const e of entries) {
      if (e.kind === 'whiteout') {
        if (createWhiteout(dirs, e.whiteout, dstLabel)) done.whiteouts++;
      } else if (setXattrs(dirs, e.path, e.xattrs, dstLabel)) {
        done.xattrs++;
      }
      if (Date.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = Date.now();
      }
    }
  } finally {
    dirs.close();
    closeSync(rootFd);
  }
  return done;
}

function openDir(p: string, label: string): number {
  try {
    return openSync(p, O_PATH | fsConstants.O_DIRECTORY);
  } catch (err) {
    throw fromNodeError(err, 'open', label);
  }
}

/** The O_PATH fd of the last entry's directory, kept: a sidecar lists a directory's entries together. */
class DirCache {
  private rel: string | undefined;
  private fd: number | undefined;

  constructor(private readonly rootFd: number, private readonly label: string) {}

  /** fd of dir rel (relative, '' for the root), or undefined when the tree has no such directory. */
  get(rel: Buffer): number | undefined {
    const key = rel.toString('latin1');
    if (key === this.rel) return this.fd;
    this.close();
    this.rel = key;
    if (rel.length === 0) {
      this.fd = undefined;
      return this.rootFd;
    }
    this.fd = openBelow(this.rootFd, rel, `${this.label}/${rel.toString()}`);
    return this.fd;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.rel = undefined;
  }
}

/**
 * Directory rel below rootFd, one component at a time, none followed if it is a symlink (names are
 * raw bytes: a path need not be UTF-8). undefined when the tree has no such directory.
 */
function openBelow(rootFd: number, rel: Buffer, label: string): number | undefined {
  let fd = rootFd;
  try {
    for (let start = 0; start <= rel.length;) {
      const end = rel.indexOf(0x2f, start) === -1 ? rel.length : rel.indexOf(0x2f, start);
      const next = Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), rel.subarray(start, end)]);
      let nextFd: number;
      try {
        nextFd = openSync(next, O_PATH | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
      } catch (err) {
        const e = fromNodeError(err, 'open', label);
        if (SKIPPED.has(e.code)) return undefined;
        throw e;
      }
      if (fd !== rootFd) closeSync(fd);
      fd = nextFd;
      start = end + 1;
    }
    const found = fd;
    fd = rootFd;
    return found;
  } finally {
    if (fd !== rootFd) closeSync(fd);
  }
}

function split(p: Buffer): { dir: Buffer; name: Buffer } {
  const i = p.lastIndexOf(0x2f);
  return i === -1 ? { dir: Buffer.alloc(0), name: p } : { dir: p.subarray(0, i), name: p.subarray(i + 1) };
}

function entryPath(dirFd: number, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), name.length === 0 ? Buffer.from('.') : name]);
}

function statIfExists(p: Buffer, label: string): Stat | undefined {
  try {
    return lstatx(p, label);
  } catch (err) {
    if (err instanceof SyscallError && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Sets the entry's xattrs (the tree's own of the same name are replaced); false if it is not in the tree. */
function setXattrs(dirs: DirCache, p: Buffer, xattrs: Whiteout['xattrs'], label: string): boolean {
  const { dir, name } = p.length === 0 ? { dir: p, name: p } : split(p);
  const dirFd = dirs.get(dir);
  if (dirFd === undefined) return false;
  const target = entryPath(dirFd, name);
  const shown = p.length === 0 ? label : `${label}/${p.toString()}`;
  if (statIfExists(target, shown) === undefined) return false;
  const copyable = copyableXattrs(xattrs);
  // security.capability last: setting it is the one thing a later attribute change could undo.
  for (const [n, v] of copyable) if (n !== 'security.capability') lsetxattr(target, n, v, shown);
  for (const [n, v] of copyable) if (n === 'security.capability') lsetxattr(target, n, v, shown);
  return true;
}

/** Creates the whiteout unless the tree has an entry of that name; its directory keeps its times. */
function createWhiteout(dirs: DirCache, w: Whiteout, label: string): boolean {
  const { dir, name } = split(w.path);
  const dirFd = dirs.get(dir);
  if (dirFd === undefined) return false;
  const target = entryPath(dirFd, name);
  const shown = `${label}/${w.path.toString()}`;
  if (statIfExists(target, shown) !== undefined) return false; // the tree has a real entry there now
  const dirPath = entryPath(dirFd, Buffer.alloc(0));
  const dirLabel = dir.length === 0 ? label : `${label}/${dir.toString()}`;
  const dirTimes = lstatx(dirPath, dirLabel);
  const e = mknod(target, S_IFCHR | 0o600, 0, 0);
  if (e !== 0) throw new SyscallError('mknod', shown, e);
  try {
    lchownSync(target, w.stat.uid, w.stat.gid);
  } catch (err) {
    const se = fromNodeError(err, 'lchown', shown);
    if (se.code !== 'EOVERFLOW') throw se;
    throw new SyscallError('lchown', shown, se.errno, `owner ${w.stat.uid}:${w.stat.gid} is outside the id range of the destination`);
  }
  try {
    chmodSync(target, w.stat.mode & 0o7777);
  } catch (err) {
    throw fromNodeError(err, 'chmod', shown);
  }
  const copyable = copyableXattrs(w.xattrs);
  for (const [n, v] of copyable) lsetxattr(target, n, v, shown);
  lutimens(target, w.stat, shown);
  lutimens(dirPath, dirTimes, dirLabel);
  return true;
}
