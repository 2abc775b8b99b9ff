// Recursive ownership shift of a directory tree by a fixed uid/gid offset: the
// fallback when the rootfs cannot be idmapped (see mode-select.ts).
//
// Safety of the walk: every directory is opened O_DIRECTORY|O_NOFOLLOW relative
// to its already-open parent (through /proc/self/fd/<fd>/<name>), and every
// entry is handled with non-following calls (lstat, lchown, l*xattr), so a
// symlink, or a directory swapped for one mid-walk, never leads outside the
// tree. Mounts inside the tree are skipped, never crossed.
//
// Idempotence: shift maps only ids in [0, size) and revert only ids in
// [offset, offset+size). With offset >= size the two domains are disjoint, so
// an id that was already shifted is outside the shift domain and is left
// alone: running the same operation twice (a re-run after a crash, a second
// hardlink to an inode) is the same as running it once.
//
// What chown destroys: for non-directories the kernel clears setuid, setgid
// (when group-executable) and security.capability on every ownership change.
// They are re-applied after the chown; because a crash in between would lose
// them for good (the re-run sees an already-shifted owner and skips the entry),
// they are first written to the journal (fsynced) and restored from there by
// the recovery. POSIX ACLs survive chown and are shifted before it.
import {
  chmodSync, closeSync, constants, fstatSync, fsyncSync, lchownSync, lstatSync, openSync, readFileSync,
  readdirSync, realpathSync, unlinkSync, writeSync, type Stats,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { O_PATH, SyscallError, fromNodeError } from '../../host/libc.ts';
import { pinPath, realPathOf } from '../../host/pinned-path.ts';
import { isMountPoint, mountsUnder } from '../../host/mount.ts';
import { lgetxattr, llistxattr, lsetxattr } from '../../host/xattr.ts';
import { fsyncDir, writeFileAtomic } from '../../fs/atomic-file.ts';

export type ChownDirection = 'shift' | 'revert';

export interface IdOffset {
  uid: number;
  gid: number;
}

export interface ChownOptions {
  /** Crash journal; must not be inside the tree. Removed when the walk completes. */
  journalPath: string;
  direction: ChownDirection;
  /** Ids the container uses: [0, size). Default 65536. */
  range?: { size: number };
  /** Called every progressEvery entries (default 1000) after the progress line is journaled. */
  onProgress?: (entries: number) => void;
  progressEvery?: number;
  /**
   * Directories (relative to root, no leading slash) left alone with everything below them, like
   * a mount; journaled, so a resumed run leaves them alone too.
   */
  exclude?: readonly string[];
  /**
   * An O_PATH fd of root, opened by the caller (host/pinned-path.ts): the walk starts from it and
   * root is then only the name it goes by (journal, messages). Without it root is opened here,
   * with no symlink allowed in any component.
   */
  rootFd?: number;
}

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

export interface ResumeOptions {
  /** finish (default) completes the interrupted direction; rollback restores the ownership before it. */
  action?: 'finish' | 'rollback';
  onProgress?: (entries: number) => void;
  progressEvery?: number;
}

export const DEFAULT_RANGE_SIZE = 65536;
// (uid_t)-1 means "unchanged" to chown(2); the largest usable id is one below.
const MAX_ID = 0xfffffffe;

const XATTR_ACL_ACCESS = 'system.posix_acl_access';
const XATTR_ACL_DEFAULT = 'system.posix_acl_default';
const XATTR_CAPS = 'security.capability';

const O_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const ESTALE = 116;
const ENOTSUP = 95;

/** id mapped in direction; the id itself if already mapped; undefined if it is in neither domain. */
export function mapId(id: number, offset: number, size: number, direction: ChownDirection): number | undefined {
  const inShifted = id >= offset && id < offset + size;
  if (direction === 'shift') return id < size ? id + offset : inShifted ? id : undefined;
  return inShifted ? id - offset : id < size ? id : undefined;
}

interface Plan {
  root: string;
  direction: ChownDirection;
  offset: IdOffset;
  size: number;
  exclude?: string[] | undefined;
}

function validatePlan(plan: Plan): void {
  const { offset, size } = plan;
  for (const [name, v] of [['size', size], ['uid offset', offset.uid], ['gid offset', offset.gid]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`chown ${plan.root}: ${name} ${v} is not a non-negative integer`);
  }
  if (size < 1) throw new RangeError(`chown ${plan.root}: range size must be at least 1`);
  // Disjoint domains are what make a re-run safe (see the header comment).
  for (const [name, v] of [['uid', offset.uid], ['gid', offset.gid]] as const) {
    if (v < size) throw new RangeError(`chown ${plan.root}: ${name} offset ${v} is below the range size ${size}; shifted and unshifted ids would overlap`);
    if (v + size - 1 > MAX_ID) throw new RangeError(`chown ${plan.root}: ${name} offset ${v} + size ${size} exceeds the largest id ${MAX_ID}`);
  }
}

interface Owner {
  uid: number;
  gid: number;
  outOfRange: boolean;
}

function mapOwner(plan: Plan, uid: number, gid: number): Owner {
  const u = mapId(uid, plan.offset.uid, plan.size, plan.direction);
  const g = mapId(gid, plan.offset.gid, plan.size, plan.direction);
  return { uid: u ?? uid, gid: g ?? gid, outOfRange: u === undefined || g === undefined };
}

// --- binary formats ---------------------------------------------------------

const ACL_EA_VERSION = 2;
const ACL_USER = 0x02;
const ACL_GROUP = 0x08;

export interface XattrShift {
  /** The rewritten value, undefined when nothing changed. */
  value: Buffer | undefined;
  outOfRange: boolean;
}

/**
 * Shifts the ACL_USER/ACL_GROUP ids of a system.posix_acl_* value:
 * u32 version (2), then entries of u16 tag, u16 perm, u32 id (little endian).
 */
export function shiftPosixAcl(value: Buffer, offset: IdOffset, size: number, direction: ChownDirection): XattrShift {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== ACL_EA_VERSION) {
    throw new Error(`malformed POSIX ACL xattr (${value.length} bytes)`);
  }
  const out = Buffer.from(value);
  let changed = false;
  let outOfRange = false;
  for (let at = 4; at < out.length; at += 8) {
    const tag = out.readUInt16LE(at);
    if (tag !== ACL_USER && tag !== ACL_GROUP) continue;
    const id = out.readUInt32LE(at + 4);
    const mapped = mapId(id, tag === ACL_USER ? offset.uid : offset.gid, size, direction);
    if (mapped === undefined) outOfRange = true;
    else if (mapped !== id) {
      out.writeUInt32LE(mapped, at + 4);
      changed = true;
    }
  }
  return { value: changed ? out : undefined, outOfRange };
}

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
const XATTR_CAPS_SZ_2 = 20;
const XATTR_CAPS_SZ_3 = 24;

/**
 * Shifts the rootid of a security.capability value. v3 caps (namespaced, with
 * a rootid) get rootid mapped like a uid; a rootid that maps to 0 is written as
 * v2, which is what the kernel reports for it from the initial namespace.
 * v1/v2 caps carry no rootid (they are valid in every namespace) and stay.
 */
export function shiftFileCaps(value: Buffer, uidOffset: number, size: number, direction: ChownDirection): XattrShift {
  if (value.length < 4) throw new Error(`malformed security.capability xattr (${value.length} bytes)`);
  const magic = value.readUInt32LE(0);
  if ((magic & VFS_CAP_REVISION_MASK) >>> 0 !== VFS_CAP_REVISION_3 || value.length < XATTR_CAPS_SZ_3) {
    return { value: undefined, outOfRange: false };
  }
  const rootid = value.readUInt32LE(20);
  const mapped = mapId(rootid, uidOffset, size, direction);
  if (mapped === undefined) return { value: undefined, outOfRange: true };
  if (mapped === rootid) return { value: undefined, outOfRange: false };
  if (mapped === 0) {
    const v2 = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_2));
    v2.writeUInt32LE((VFS_CAP_REVISION_2 | (magic & VFS_CAP_FLAGS_EFFECTIVE)) >>> 0, 0);
    return { value: v2, outOfRange: false };
  }
  const out = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_3));
  out.writeUInt32LE(mapped, 20);
  return { value: out, outOfRange: false };
}

// --- journal ----------------------------------------------------------------

const IdOffsetSchema = z.object({ uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() });
const BeginSchema = z.object({
  op: z.literal('begin'),
  v: z.literal(1),
  root: z.string().min(1),
  direction: z.enum(['shift', 'revert']),
  offset: IdOffsetSchema,
  size: z.number().int().positive(),
  exclude: z.optional(z.array(z.string())),
});
const SpecialSchema = z.object({
  op: z.literal('special'),
  /** relative to root, UTF-8 for display */
  path: z.string(),
  /** the exact bytes (base64) when path is not valid UTF-8 */
  raw: z.string().optional(),
  ino: z.number(),
  uid: z.number().int(),
  gid: z.number().int(),
  mode: z.number().int(),
  caps: z.string().nullable(),
});
const ProgressSchema = z.object({ op: z.literal('progress'), entries: z.number(), changed: z.number() });
const LineSchema = z.discriminatedUnion('op', [BeginSchema, SpecialSchema, ProgressSchema]);

type Begin = z.infer<typeof BeginSchema>;
type Special = z.infer<typeof SpecialSchema>;

interface Journal {
  begin: Begin;
  specials: Special[];
}

function readJournal(file: string): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw fromNodeError(err, 'open', file);
  }
  const lines = text.split('\n');
  const parsed: z.infer<typeof LineSchema>[] = [];
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    const result = LineSchema.safeParse(value);
    if (result.success) {
      parsed.push(result.data);
      continue;
    }
    // A crash mid-append leaves at most the final line torn; it was never acted on.
    if (i === lines.length - 1) break;
    throw new Error(`${file}: corrupt chown journal: line ${i + 1} is not a journal record`);
  }
  const [first, ...rest] = parsed;
  if (first?.op !== 'begin') throw new Error(`${file}: corrupt chown journal: no begin record`);
  return { begin: first, specials: rest.filter((l): l is Special => l.op === 'special') };
}

class JournalWriter {
  private readonly fd: number;

  constructor(private readonly file: string, begin: Begin) {
    // Atomic and fsynced (file and directory): the plan is durable before the first chown.
    writeFileAtomic(file, `${JSON.stringify(begin)}\n`, { mode: 0o600 });
    try {
      this.fd = openSync(file, 'a');
    } catch (err) {
      throw fromNodeError(err, 'open', file);
    }
  }

  /** Durable before the chown it protects. */
  special(rec: Special): void {
    this.append(rec);
    try {
      fsyncSync(this.fd);
    } catch (err) {
      throw fromNodeError(err, 'fsync', this.file);
    }
  }

  // Not fsynced: progress is informational (recovery re-walks the whole tree,
  // since readdir order is no stable cursor and the re-walk is idempotent).
  progress(entries: number, changed: number): void {
    this.append({ op: 'progress', entries, changed });
  }

  private append(rec: object): void {
    try {
      writeSync(this.fd, `${JSON.stringify(rec)}\n`);
    } catch (err) {
      throw fromNodeError(err, 'write', this.file);
    }
  }

  complete(): void {
    closeSync(this.fd);
    try {
      unlinkSync(this.file);
    } catch (err) {
      throw fromNodeError(err, 'unlink', this.file);
    }
    fsyncDir(path.dirname(this.file));
  }

  abandon(): void {
    closeSync(this.fd);
  }
}

// --- path helpers -----------------------------------------------------------

const SLASH = Buffer.from('/');
const DOT = Buffer.from('.');

function procPath(dirFd: number, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), name]);
}

function joinRel(rel: Buffer, name: Buffer): Buffer {
  return rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]);
}

function shownPath(root: string, rel: Buffer): string {
  return rel.length === 0 ? root : path.join(root, rel.toString('utf8'));
}

function relabel(err: unknown, shown: string): unknown {
  return err instanceof SyscallError ? new SyscallError(err.syscall, shown, err.errno) : err;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}

function lstatAt(op: Buffer, shown: string): Stats | undefined {
  try {
    return lstatSync(op);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined; // removed since readdir
    throw fromNodeError(err, 'lstat', shown);
  }
}

/** Opens a directory without following a symlink and checks it is the inode lstat saw. */
function openDirAt(op: Buffer | string, shown: string, expect?: Stats, flags = O_DIR_NOFOLLOW): { fd: number; st: Stats } {
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
function chmodNoFollow(op: Buffer, shown: string, expect: Stats, mode: number): void {
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

function listXattrs(op: Buffer, shown: string): string[] {
  try {
    return llistxattr(op);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOTSUP) return [];
    throw relabel(err, shown);
  }
}

function getXattr(op: Buffer, name: string, shown: string): Buffer | undefined {
  try {
    return lgetxattr(op, name);
  } catch (err) {
    throw relabel(err, shown);
  }
}

function setXattr(op: Buffer, name: string, value: Buffer, shown: string): void {
  try {
    lsetxattr(op, name, value);
  } catch (err) {
    throw relabel(err, `${shown} (${name})`);
  }
}

// --- the walk ---------------------------------------------------------------

interface WalkHooks {
  onProgress?: (entries: number) => void;
  progressEvery?: number;
}

class TreeWalk {
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

function specialRecord(rel: Buffer, st: Stats, caps: Buffer | undefined): Special {
  const text = rel.toString('utf8');
  const rec: Special = { op: 'special', path: text, ino: st.ino, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, caps: caps ? caps.toString('base64') : null };
  if (!Buffer.from(text, 'utf8').equals(rel)) rec.raw = rel.toString('base64');
  return rec;
}

// --- recovery ---------------------------------------------------------------

/**
 * Re-applies the setuid/setgid bits and file caps of every journaled entry
 * whose chown happened (its owner is the mapped one) before the crash. After
 * this every entry is either untouched or completely done.
 */
function repairSpecials(journal: Journal): void {
  const { begin } = journal;
  const plan: Plan = { root: begin.root, direction: begin.direction, offset: begin.offset, size: begin.size };
  for (const rec of journal.specials) {
    const rel = rec.raw !== undefined ? Buffer.from(rec.raw, 'base64') : Buffer.from(rec.path, 'utf8');
    const shown = shownPath(begin.root, rel);
    let parts = splitRel(rel);
    let root = begin.root;
    // The root itself (a file root): reached through its parent.
    if (parts.length === 0) [parts, root] = [[Buffer.from(path.basename(root))], path.dirname(root)];
    const base = parts.pop();
    if (!base) continue;
    const parentFd = openDirChain(root, parts, shown);
    if (parentFd === undefined) continue;
    try {
      const op = procPath(parentFd, base);
      const st = lstatAt(op, shown);
      if (!st || st.ino !== rec.ino || st.isSymbolicLink() || st.isDirectory()) continue;
      const expected = mapOwner(plan, rec.uid, rec.gid);
      if (st.uid !== expected.uid || st.gid !== expected.gid) continue; // chown did not happen
      if (rec.caps !== null) {
        const caps = Buffer.from(rec.caps, 'base64');
        const shifted = shiftFileCaps(caps, plan.offset.uid, plan.size, plan.direction);
        setXattr(op, XATTR_CAPS, shifted.value ?? caps, shown);
      }
      if ((st.mode & 0o7777) !== rec.mode) chmodNoFollow(op, shown, st, rec.mode);
    } finally {
      closeSync(parentFd);
    }
  }
}

function splitRel(rel: Buffer): Buffer[] {
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
function openDirChain(root: string, parts: Buffer[], shown: string): number | undefined {
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

// --- entry points -----------------------------------------------------------

function run(plan: Plan, journalPath: string, hooks: WalkHooks, rootFd?: number): ChownReport {
  const start = performance.now();
  const journal = new JournalWriter(journalPath, { op: 'begin', v: 1, ...plan });
  const walk = new TreeWalk(plan, journal, hooks, rootFd);
  try {
    walk.run();
  } catch (err) {
    journal.abandon();
    throw err;
  }
  journal.complete();
  return { ...walk.report, ms: Math.round(performance.now() - start) };
}

function resolveRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch (err) {
    throw fromNodeError(err, 'realpath', root);
  }
}

/**
 * Changes the owner of every entry of the tree at root: shift maps ids in
 * [0, size) to id + offset, revert maps [offset, offset + size) back. A
 * journal left by an interrupted run on the same root and offset is repaired
 * first; one for another tree or offset is an error (resume it first).
 */
export function chownTreeByOffset(root: string, offset: IdOffset, opts: ChownOptions): ChownReport {
  const exclude = opts.exclude?.map((p) => path.posix.normalize(p).replace(/^\/+|\/+$/g, '')).filter((p) => p !== '' && p !== '.');
  const plan: Plan = {
    root: opts.rootFd !== undefined ? realPathOf(opts.rootFd, root) : resolveRoot(root), direction: opts.direction, offset: { uid: offset.uid, gid: offset.gid }, size: opts.range?.size ?? DEFAULT_RANGE_SIZE,
    ...(exclude !== undefined && exclude.length > 0 ? { exclude } : {}),
  };
  validatePlan(plan);
  const journalPath = path.resolve(opts.journalPath);
  if (journalPath === plan.root || journalPath.startsWith(`${plan.root}/`)) {
    throw new Error(`chown ${plan.root}: journal ${journalPath} must not be inside the tree`);
  }
  const pending = readJournal(journalPath);
  if (pending) {
    const b = pending.begin;
    if (b.root !== plan.root || b.size !== plan.size || b.offset.uid !== plan.offset.uid || b.offset.gid !== plan.offset.gid) {
      throw new Error(`${journalPath}: an interrupted ${b.direction} of ${b.root} by ${b.offset.uid}:${b.offset.gid} is pending; resume it first`);
    }
    repairSpecials(pending);
  }
  return run(plan, journalPath, opts, opts.rootFd);
}

/**
 * Completes (or rolls back) the chown recorded in journalPath, then removes
 * the journal. Returns undefined when there is no journal.
 */
export function resumeInterruptedChown(journalPath: string, opts: ResumeOptions = {}): ChownReport | undefined {
  const file = path.resolve(journalPath);
  const pending = readJournal(file);
  if (!pending) return undefined;
  const b = pending.begin;
  repairSpecials(pending);
  const direction: ChownDirection = opts.action === 'rollback' ? (b.direction === 'shift' ? 'revert' : 'shift') : b.direction;
  const plan: Plan = { root: b.root, direction, offset: b.offset, size: b.size, exclude: b.exclude };
  validatePlan(plan);
  return run(plan, file, opts);
}
