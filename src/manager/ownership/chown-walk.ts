// The walk of a chown by offset: every directory opened relative to its already-open parent,
// every entry changed with non-following calls (host/fd-relative.ts); mounts inside the tree are
// skipped, never crossed; what chown clears is journaled first and re-applied after.
import { closeSync, constants, fstatSync, lchownSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { pinPath } from '../../host/pinned-path.ts';
import { isMountPoint, mountsUnder } from '../../host/mount.ts';
import {
  chmodNoFollow, DOT, ESTALE, getXattr, joinRel, listXattrs, lstatAt, openDirAt, procPath, setXattr, shownPath,
} from '../../host/fd-relative.ts';
import { mapOwner, type Owner, type Plan } from './id-shift.ts';
import { shiftFileCaps, shiftPosixAcl, XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, XATTR_CAPS } from './xattr-codecs.ts';
import { specialRecord, type JournalWriter } from './chown-journal.ts';

export interface ChownReport {
  /** Entries examined (mounts inside the tree and everything below them excluded). */
  entries: number;
  /** Entries whose owner, ACL or file caps were rewritten. */
  changed: number;
  skippedOtherMounts: number;
  /** Directories skipped because the caller excluded them (see ChownOptions.exclude). */
  skippedExcluded: number;
  /** Entries with an owner, ACL id or caps rootid outside the source domain (left as is). */
  outOfRange: number;
  /** Visits of a hardlink whose inode was already changed through another name. */
  hardlinkAliases: number;
  ms: number;
}

export interface WalkHooks {
  onProgress?: (entries: number) => void;
  progressEvery?: number;
}

export class TreeWalk {
  readonly report: Omit<ChownReport, 'ms'> = { entries: 0, changed: 0, skippedOtherMounts: 0, skippedExcluded: 0, outOfRange: 0, hardlinkAliases: 0 };
  private readonly changedInodes = new Set<string>();
  private readonly mounts: Set<string>;
  private readonly excluded: ReadonlySet<string>;
  private readonly every: number;
  private rootDev = 0;

  constructor(private readonly plan: Plan, private readonly journal: JournalWriter, private readonly hooks: WalkHooks, private readonly rootFd?: number) {
    this.mounts = new Set(mountsUnder(plan.root).filter((m) => m !== plan.root));
    this.excluded = new Set(plan.exclude ?? []);
    this.every = Math.max(1, hooks.progressEvery ?? 1000);
  }

  /** Walks from the root fd given, or from root opened with no symlink in any component. */
  run(): void {
    if (this.rootFd !== undefined) return this.runFrom(this.rootFd);
    const pinned = pinPath(this.plan.root, 'chown');
    try {
      this.runFrom(pinned.fd);
    } finally {
      closeSync(pinned.fd);
    }
  }

  private runFrom(rootFd: number): void {
    const rootSt = fstatSync(rootFd);
    if (!rootSt.isDirectory()) {
      this.runOnFile(rootSt);
      return;
    }
    // Reopened through the fd's magic link: the same inode, whatever its path names now.
    const root = openDirAt(`/proc/self/fd/${rootFd}`, this.plan.root, rootSt, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      this.rootDev = root.st.dev;
      const op = procPath(root.fd, DOT);
      const st = lstatAt(op, this.plan.root);
      if (!st) throw new SyscallError('lstat', this.plan.root, 2);
      this.fix(op, st, Buffer.alloc(0), this.plan.root);
      this.walkDir(root.fd, Buffer.alloc(0));
    } finally {
      closeSync(root.fd);
    }
  }

  /**
   * A root that is a file (a file bind mount's source): the file alone, reached through its parent
   * (opened with no symlink in any component), which must still hold the inode of the root fd.
   */
  private runOnFile(rootSt: Stats): void {
    const parentPath = path.dirname(this.plan.root);
    const pinnedParent = pinPath(parentPath, 'chown');
    let parent: { fd: number; st: Stats };
    try {
      parent = openDirAt(`/proc/self/fd/${pinnedParent.fd}`, parentPath, pinnedParent.stat, constants.O_RDONLY | constants.O_DIRECTORY);
    } finally {
      closeSync(pinnedParent.fd);
    }
    try {
      const op = procPath(parent.fd, Buffer.from(path.basename(this.plan.root)));
      const st = lstatAt(op, this.plan.root);
      if (!st) throw new SyscallError('lstat', this.plan.root, 2);
      if (st.dev !== rootSt.dev || st.ino !== rootSt.ino) throw new SyscallError('lstat', this.plan.root, ESTALE, 'file replaced since it was opened');
      this.rootDev = st.dev;
      this.fix(op, st, Buffer.alloc(0), this.plan.root);
    } finally {
      closeSync(parent.fd);
    }
  }

  private walkDir(dirFd: number, rel: Buffer): void {
    let names: Buffer[];
    try {
      names = readdirSync(`/proc/self/fd/${dirFd}`, { encoding: 'buffer' });
    } catch (err) {
      throw fromNodeError(err, 'readdir', shownPath(this.plan.root, rel));
    }
    for (const name of names) this.visit(dirFd, name, joinRel(rel, name));
  }

  private visit(dirFd: number, name: Buffer, rel: Buffer): void {
    const op = procPath(dirFd, name);
    const shown = shownPath(this.plan.root, rel);
    const st = lstatAt(op, shown);
    if (!st) return;
    if (!st.isDirectory()) {
      // A file bind mount has no st_dev of its own to tell; mountinfo does.
      if (this.mounts.has(shown)) {
        this.report.skippedOtherMounts++;
        return;
      }
      this.fix(op, st, rel, shown);
      return;
    }
    // lstat of a mountpoint already shows the mounted root; a bind mount from
    // the same filesystem keeps st_dev, so the mount-root flag is checked too.
    if (st.dev !== this.rootDev || this.mounts.has(shown)) {
      this.report.skippedOtherMounts++;
      return;
    }
    if (this.excluded.size > 0 && this.excluded.has(rel.toString('utf8'))) {
      this.report.skippedExcluded++;
      return;
    }
    const dir = openDirAt(op, shown, st);
    try {
      if (isMountPoint(`/proc/self/fd/${dir.fd}/.`)) {
        this.report.skippedOtherMounts++;
        return;
      }
      this.fix(op, st, rel, shown);
      this.walkDir(dir.fd, rel);
    } finally {
      closeSync(dir.fd);
    }
  }

  private fix(op: Buffer, st: Stats, rel: Buffer, shown: string): void {
    const report = this.report;
    report.entries++;
    if (report.entries % this.every === 0) {
      this.journal.progress(report.entries, report.changed);
      this.hooks.onProgress?.(report.entries);
    }
    const owner = mapOwner(this.plan, st.uid, st.gid);
    let outOfRange = owner.outOfRange;
    let changed = false;
    let caps: Buffer | undefined;
    if (!st.isSymbolicLink()) {
      const names = listXattrs(op, shown);
      const acl = this.shiftAcls(op, names, shown);
      changed = acl.changed;
      outOfRange ||= acl.outOfRange;
      if (names.includes(XATTR_CAPS) && !st.isDirectory()) caps = getXattr(op, XATTR_CAPS, shown);
    }
    const key = `${st.dev}:${st.ino}`;
    if (owner.uid !== st.uid || owner.gid !== st.gid) {
      outOfRange = this.chown(op, st, rel, shown, owner, caps) || outOfRange;
      changed = true;
      if (st.nlink > 1 && !st.isDirectory()) this.changedInodes.add(key);
    } else if (st.nlink > 1 && this.changedInodes.has(key)) {
      report.hardlinkAliases++;
    }
    if (changed) report.changed++;
    if (outOfRange) report.outOfRange++;
  }

  /** ACLs survive chown, so they are shifted first; a crash in between is undone by re-running. */
  private shiftAcls(op: Buffer, names: string[], shown: string): { changed: boolean; outOfRange: boolean } {
    let changed = false;
    let outOfRange = false;
    for (const name of [XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT]) {
      if (!names.includes(name)) continue;
      const acl = getXattr(op, name, shown);
      if (!acl) continue;
      const shifted = shiftPosixAcl(acl, this.plan.offset, this.plan.size, this.plan.direction);
      outOfRange ||= shifted.outOfRange;
      if (shifted.value) {
        setXattr(op, name, shifted.value, shown);
        changed = true;
      }
    }
    return { changed, outOfRange };
  }

  /** lchown, then re-applies what the kernel cleared. Returns whether the caps rootid was out of range. */
  private chown(op: Buffer, st: Stats, rel: Buffer, shown: string, owner: Owner, caps: Buffer | undefined): boolean {
    const special = !st.isDirectory() && !st.isSymbolicLink() && ((st.mode & 0o6000) !== 0 || caps !== undefined);
    if (special) this.journal.special(specialRecord(rel, st, caps));
    try {
      lchownSync(op, owner.uid, owner.gid);
    } catch (err) {
      throw fromNodeError(err, 'lchown', shown);
    }
    let outOfRange = false;
    if (caps) {
      const shifted = shiftFileCaps(caps, this.plan.offset.uid, this.plan.size, this.plan.direction);
      outOfRange = shifted.outOfRange;
      setXattr(op, XATTR_CAPS, shifted.value ?? caps, shown);
    }
    if (special && (st.mode & 0o6000) !== 0) chmodNoFollow(op, shown, st, st.mode & 0o7777);
    return outOfRange;
  }
}
