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
import { closeSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fromNodeError } from '../../host/libc.ts';
import { realPathOf } from '../../host/pinned-path.ts';
import { chmodNoFollow, lstatAt, openDirChain, procPath, setXattr, shownPath, splitRel } from '../../host/fd-relative.ts';
import { DEFAULT_RANGE_SIZE, mapOwner, validatePlan, type ChownDirection, type IdOffset, type Plan } from './id-shift.ts';
import { shiftFileCaps, XATTR_CAPS } from './xattr-codecs.ts';
import { JournalWriter, readJournal, type Journal } from './chown-journal.ts';
import { TreeWalk, type ChownReport, type WalkHooks } from './chown-walk.ts';

export { DEFAULT_RANGE_SIZE, mapId, type ChownDirection, type IdOffset } from './id-shift.ts';
export { shiftFileCaps, shiftPosixAcl, type XattrShift } from './xattr-codecs.ts';
export type { ChownReport } from './chown-walk.ts';

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

export interface ResumeOptions {
  /** finish (default) completes the interrupted direction; rollback restores the ownership before it. */
  action?: 'finish' | 'rollback';
  onProgress?: (entries: number) => void;
  progressEvery?: number;
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
