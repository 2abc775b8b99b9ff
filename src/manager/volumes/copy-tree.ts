// One-pass tree copy for volume sync: data (sparse-aware, in-kernel), ownership, mode, xattrs,
// hardlinks, symlinks, devices, fifos, sockets and nanosecond times. Ownership is copied
// verbatim; the id shift comes from reading or writing through an idmapped view (shift-view.ts),
// so ACL entries and file-capability root ids are translated by the kernel too.
import {
  closeSync, constants as fsConstants, fchmodSync, fchownSync, ftruncateSync, lchownSync, chmodSync, linkSync,
  mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync,
} from 'node:fs';
import { fromNodeError, SyscallError } from '../../host/libc.ts';
import {
  EPERM, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFBLK, S_IFSOCK, SEEK_DATA, SEEK_HOLE,
  copyRange, type CopyMethod, lgetxattrs, lremovexattr, lsetxattr, lstatx, lutimens, mknod, seek, type Stat, type Xattrs,
} from '../../host/fs-native.ts';
import { copyableXattrs, FS_OWN_XATTRS, type Attrs, type CopyOptions, type CopyStats, type Whiteout } from './copy-options.ts';

const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fsConstants;
const YIELD_EVERY_MS = 20;

export { copyableXattrs, FS_OWN_XATTRS, type Attrs, type CopyHooks, type CopyOptions, type CopyStats, type Whiteout } from './copy-options.ts';

/**
 * Copies the contents of directory src into the existing directory dst (empty, or an earlier
 * copy with opts.unchanged) and gives dst the attributes of src. Never follows a symlink on either
 * side: destination entries are created, replaced or removed only inside directories this copy
 * made or checked to be directories. Async only to yield to the event loop now and then.
 */
export async function copyTree(src: string, dst: string, opts: CopyOptions): Promise<CopyStats> {
  const c = new Copier(opts);
  // "/." so that a /proc/self/fd/N root is followed while everything below it is not.
  const s = Buffer.from(`${src}/.`);
  const d = Buffer.from(`${dst}/.`);
  const st = c.stat(s, EMPTY);
  if ((st.mode & S_IFMT) !== S_IFDIR) throw new SyscallError('copy', opts.srcLabel, 20 /* ENOTDIR */, 'source is not a directory');
  await c.dir(s, d, EMPTY);
  c.attrs(d, EMPTY, st, c.xattrsOf(s, EMPTY), opts.unchanged !== undefined);
  return c.stats;
}

type LinkTarget = { path: Buffer; inode: string } | 'rejected-whiteout';

class Copier {
  readonly stats: CopyStats = { entries: 0, bytes: 0, rejectedWhiteouts: 0, kept: 0 };
  private readonly links = new Map<string, LinkTarget>();
  private readonly method: CopyMethod = { sendfile: false };
  private lastYield = Date.now();

  constructor(private readonly o: CopyOptions) {}

  srcLabel(rel: Buffer): string {
    return rel.length === 0 ? this.o.srcLabel : `${this.o.srcLabel}/${rel.toString()}`;
  }

  dstLabel(rel: Buffer): string {
    return rel.length === 0 ? this.o.dstLabel : `${this.o.dstLabel}/${rel.toString()}`;
  }

  stat(p: Buffer, rel: Buffer): Stat {
    return lstatx(p, this.srcLabel(rel));
  }

  statIfExists(p: Buffer, rel: Buffer): Stat | undefined {
    try {
      return lstatx(p, this.srcLabel(rel));
    } catch (err) {
      if (err instanceof SyscallError && err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  xattrsOf(p: Buffer, rel: Buffer): Xattrs {
    const own = copyableXattrs(lgetxattrs(p, this.srcLabel(rel)));
    this.o.hooks?.onXattrs?.(rel, own);
    const extra = copyableXattrs(this.o.hooks?.extraXattrs?.(rel) ?? []);
    if (extra.length === 0) return own;
    const names = new Set(extra.map(([n]) => n));
    return [...own.filter(([n]) => !names.has(n)), ...extra];
  }

  async dir(s: Buffer, d: Buffer, rel: Buffer): Promise<void> {
    let listed: Buffer[];
    try {
      listed = readdirSync(s, { encoding: 'buffer' });
    } catch (err) {
      throw fromNodeError(err, 'readdir', this.srcLabel(rel));
    }
    // overlayfs lists a whiteout in a directory only one layer has, and then says ENOENT for it:
    // such a name is not in the tree (a sidecar's whiteout may take its place).
    const stats = new Map<Buffer, Stat>();
    for (const name of listed) {
      const st = this.statIfExists(join(s, name), rel.length === 0 ? name : join(rel, name));
      if (st !== undefined) stats.set(name, st);
    }
    const names = [...stats.keys()];
    const extra = this.o.hooks?.extraWhiteouts?.(rel) ?? [];
    if (extra.length > 0) this.createExtraWhiteouts(d, rel, extra, names);
    const update = this.o.unchanged !== undefined;
    if (update) this.removeExtraneous(d, rel, names);
    for (const name of names) {
      const cs = join(s, name);
      const cd = join(d, name);
      const crel = rel.length === 0 ? name : join(rel, name);
      const st = stats.get(name) ?? this.stat(cs, crel);
      this.stats.entries++;
      const existing = update ? this.dstStat(cd, crel) : undefined;
      if (existing !== undefined) {
        const sameType = (existing.mode & S_IFMT) === (st.mode & S_IFMT);
        if (sameType && (st.mode & S_IFMT) === S_IFDIR) {
          await this.dir(cs, cd, crel);
          const xattrs = this.xattrsOf(cs, crel);
          // Stat again: a changed child moved the directory's mtime.
          const now = this.dstStat(cd, crel);
          if (now !== undefined && this.o.unchanged?.(st, now) === true) this.stats.kept++;
          else this.attrs(cd, crel, st, xattrs, true);
          await this.maybeYield();
          continue;
        }
        if (sameType && this.keep(cs, cd, crel, st, existing)) {
          await this.maybeYield();
          continue;
        }
        this.remove(cd, crel);
      }
      if ((st.mode & S_IFMT) === S_IFDIR) {
        this.node(() => mkdirSync(cd, { mode: 0o700 }), 'mkdir', crel);
        await this.dir(cs, cd, crel);
        this.attrs(cd, crel, st, this.xattrsOf(cs, crel));
      } else {
        this.nonDir(cs, cd, crel, st);
      }
      await this.maybeYield();
    }
  }

  private async maybeYield(): Promise<void> {
    if (Date.now() - this.lastYield < YIELD_EVERY_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.lastYield = Date.now();
  }

  /** Update mode: whether the existing dst entry (same type, not a directory) can stay. */
  private keep(cs: Buffer, cd: Buffer, rel: Buffer, st: Stat, existing: Stat): boolean {
    if (st.nlink > 1) {
      const first = this.links.get(st.inode);
      if (first === 'rejected-whiteout') return false;
      // A later name of a hardlinked inode stays only if it still is the first name's inode.
      if (first !== undefined) return this.kept(existing.inode === first.inode);
      if (this.o.unchanged?.(st, existing) !== true) return false;
      this.links.set(st.inode, { path: cd, inode: existing.inode });
    } else if (this.o.unchanged?.(st, existing) !== true) {
      return false;
    }
    this.xattrsOf(cs, rel); // for the hooks: a kept entry's xattrs still count
    return this.kept(true);
  }

  private kept(yes: boolean): boolean {
    if (yes) this.stats.kept++;
    return yes;
  }

  private dstStat(cd: Buffer, rel: Buffer): Stat | undefined {
    try {
      return lstatx(cd, this.dstLabel(rel));
    } catch (err) {
      if (err instanceof SyscallError && err.code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Update mode: removes what dst has and the source no longer does. */
  private removeExtraneous(d: Buffer, rel: Buffer, sourceNames: Buffer[]): void {
    const wanted = new Set(sourceNames.map((n) => n.toString('latin1')));
    const present = this.node(() => readdirSync(d, { encoding: 'buffer' }), 'readdir', rel);
    for (const name of present) {
      if (!wanted.has(name.toString('latin1'))) this.remove(join(d, name), rel.length === 0 ? name : join(rel, name));
    }
  }

  private remove(p: Buffer, rel: Buffer): void {
    this.node(() => rmSync(p, { recursive: true, force: true }), 'rm', rel);
  }

  private nonDir(cs: Buffer, cd: Buffer, rel: Buffer, st: Stat): void {
    const type = st.mode & S_IFMT;
    if (st.nlink > 1) {
      const first = this.links.get(st.inode);
      if (first === 'rejected-whiteout') return this.rejectWhiteout(rel, st, []);
      if (first !== undefined) return this.node(() => linkSync(first.path, cd), 'link', rel);
    }
    const xattrs = this.xattrsOf(cs, rel);
    switch (type) {
      case S_IFREG:
        this.file(cs, cd, rel, st, xattrs);
        break;
      case S_IFLNK: {
        const target = this.node(() => readlinkSync(cs, { encoding: 'buffer' }), 'readlink', rel, 'src');
        this.node(() => symlinkSync(target, cd), 'symlink', rel);
        this.attrs(cd, rel, st, xattrs);
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
      case S_IFSOCK: {
        const e = mknod(cd, type | 0o600, st.rdevMajor, st.rdevMinor);
        if (e === EPERM && type === S_IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0) {
          this.rejectWhiteout(rel, st, xattrs);
          if (st.nlink > 1) this.links.set(st.inode, 'rejected-whiteout');
          return;
        }
        if (e !== 0) throw new SyscallError('mknod', this.dstLabel(rel), e);
        this.attrs(cd, rel, st, xattrs);
        break;
      }
      default:
        throw new SyscallError('copy', this.srcLabel(rel), 22 /* EINVAL */, `unknown file type 0o${type.toString(8)}`);
    }
    if (st.nlink > 1) this.links.set(st.inode, { path: cd, inode: lstatx(cd, this.dstLabel(rel)).inode });
  }

  private rejectWhiteout(rel: Buffer, st: Stat, xattrs: Xattrs): void {
    const hook = this.o.hooks?.onRejectedWhiteout;
    if (hook === undefined) throw new SyscallError('mknod', this.dstLabel(rel), EPERM, 'destination refuses overlay whiteouts (char 0/0)');
    hook({ path: Buffer.from(rel), stat: st, xattrs });
    this.stats.rejectedWhiteouts++;
  }

  private file(cs: Buffer, cd: Buffer, rel: Buffer, st: Stat, xattrs: Xattrs): void {
    const fin = this.node(() => openSync(cs, O_RDONLY | O_NOFOLLOW), 'open', rel, 'src');
    try {
      const fout = this.node(() => openSync(cd, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600), 'open', rel);
      try {
        this.data(fin, fout, rel, st);
        // chown first: it clears set-id bits and security.capability, which mode and xattrs restore.
        this.chown(() => fchownSync(fout, st.uid, st.gid), 'fchown', rel, st);
        this.node(() => fchmodSync(fout, st.mode & 0o7777), 'fchmod', rel);
      } finally {
        closeSync(fout);
      }
    } finally {
      closeSync(fin);
    }
    this.setXattrs(cd, rel, xattrs);
    lutimens(cd, st, this.dstLabel(rel));
  }

  private data(fin: number, fout: number, rel: Buffer, st: Stat): void {
    if (st.size === 0) return;
    const label = this.dstLabel(rel);
    if (st.blocks * 512 >= st.size) {
      copyRange(fin, fout, 0, st.size, label, this.method, true); // both fds were just opened
    } else {
      // Fewer blocks than bytes: copy only the data extents, holes stay holes.
      let off = 0;
      while (off < st.size) {
        const data = seek(fin, off, SEEK_DATA, this.srcLabel(rel));
        if (data === -1 || data >= st.size) break;
        const hole = Math.min(seek(fin, data, SEEK_HOLE, this.srcLabel(rel)), st.size);
        copyRange(fin, fout, data, hole, label, this.method);
        off = hole;
      }
      this.node(() => ftruncateSync(fout, st.size), 'ftruncate', rel);
    }
    this.stats.bytes += st.size;
  }

  /**
   * Owner, mode, xattrs and times, in the order that keeps each: chown clears set-id bits and file
   * capabilities. `existed`: p is an earlier copy, so xattrs the source no longer has go.
   */
  attrs(p: Buffer, rel: Buffer, st: Attrs, xattrs: Xattrs, existed = false): void {
    const type = st.mode & S_IFMT;
    this.chown(() => lchownSync(p, st.uid, st.gid), 'lchown', rel, st);
    if (type !== S_IFLNK) this.node(() => chmodSync(p, st.mode & 0o7777), 'chmod', rel);
    if (existed) {
      const keep = new Set(xattrs.map(([n]) => n));
      for (const [name] of lgetxattrs(p, this.dstLabel(rel))) {
        // LSM labels (security.selinux, ...) belong to the destination's policy, not to the copy.
        const lsm = name.startsWith('security.') && name !== 'security.capability';
        if (!keep.has(name) && !lsm && !FS_OWN_XATTRS.has(name)) lremovexattr(p, name, this.dstLabel(rel));
      }
    }
    this.setXattrs(p, rel, xattrs);
    lutimens(p, st, this.dstLabel(rel));
  }

  private setXattrs(p: Buffer, rel: Buffer, xattrs: Xattrs): void {
    // security.capability last: setting it is the one thing a later attribute change could undo.
    for (const [name, value] of xattrs) if (name !== 'security.capability') this.setXattr(p, rel, name, value);
    for (const [name, value] of xattrs) if (name === 'security.capability') this.setXattr(p, rel, name, value);
  }

  private setXattr(p: Buffer, rel: Buffer, name: string, value: Buffer): void {
    try {
      lsetxattr(p, name, value, this.dstLabel(rel));
    } catch (err) {
      const refused = err instanceof SyscallError && (err.code === 'EPERM' || err.code === 'EOPNOTSUPP');
      if (!refused || this.o.hooks?.onRejectedXattr?.(rel, name) !== true) throw err;
    }
  }

  private createExtraWhiteouts(d: Buffer, rel: Buffer, extra: readonly Whiteout[], sourceNames: Buffer[]): void {
    const taken = new Set(sourceNames.map((n) => n.toString('latin1')));
    for (const w of extra) {
      const name = basename(w.path);
      if (taken.has(name.toString('latin1'))) continue; // the tree has a real entry there now
      taken.add(name.toString('latin1'));
      const cd = join(d, name);
      const crel = rel.length === 0 ? name : join(rel, name);
      const e = mknod(cd, S_IFCHR | 0o600, 0, 0);
      if (e !== 0) throw new SyscallError('mknod', this.dstLabel(crel), e);
      this.attrs(cd, crel, { ...w.stat, mode: S_IFCHR | (w.stat.mode & 0o7777) }, w.xattrs);
      this.stats.entries++;
    }
  }

  /** chown through an idmapped view fails with EOVERFLOW for an id outside the view's range. */
  private chown(fn: () => void, op: string, rel: Buffer, st: Attrs): void {
    try {
      fn();
    } catch (err) {
      const e = fromNodeError(err, op, this.dstLabel(rel));
      if (e.code !== 'EOVERFLOW') throw e;
      throw new SyscallError(op, this.srcLabel(rel), e.errno, `owner ${st.uid}:${st.gid} is outside the id range of the destination`);
    }
  }

  /** Runs a node:fs call, turning its error into "op path: CODE (text)"; side 'src' labels the source path. */
  node<T>(fn: () => T, op: string, rel: Buffer, side: 'src' | 'dst' = 'dst'): T {
    try {
      return fn();
    } catch (err) {
      throw fromNodeError(err, op, side === 'src' ? this.srcLabel(rel) : this.dstLabel(rel));
    }
  }
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

function basename(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i === -1 ? p : p.subarray(i + 1);
}
