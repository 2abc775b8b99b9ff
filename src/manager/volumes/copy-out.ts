// Copy mode: the store volume is a host directory under the manager's state dir, owned by
// the container's id range, and each stop copies it into the container's rootfs (ids shifted back
// through an idmapped view of the volume). The fallback where the layer cannot hold the data itself
// (in-layer.ts): a layer without idmapped mount support, or clone/chown ownership.
import { closeSync, constants as fsConstants, lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { O_PATH, S_IFDIR, S_IFMT, type Stat, type Xattrs } from '../../host/fs-native.ts';
import { copyTree, type CopyStats, type Whiteout } from './copy-tree.ts';
import { VolumeError } from './errors.ts';
import { faultPoint } from './fault.ts';
import type { Rootfs } from '../../host/in-root.ts';
import { SidecarWriter, sidecarName } from './sidecar.ts';
import { withUnshiftedView, type IdRange } from './shift-view.ts';
import { restoreSidecar } from './sidecar-restore.ts';

/** The copy-sync-out:mid-copy fault point fires when the copy has reached this many entries. */
const FAULT_MID_COPY_AFTER = 20;

/** What syncOutVolume reads and updates of a volume's record. */
export interface CopyVolume {
  rootfsPath: string;
  hostDir: string;
  lastSyncOut?: { startMs: number; endMs: number; targetIno: string } | undefined;
}

/** Copies the image content at the volume's path into the (empty) volume, ids shifted up. */
export async function syncIntoVolume(r: Rootfs, v: CopyVolume, ids: IdRange): Promise<CopyStats | undefined> {
  let srcFd: number | undefined;
  try {
    srcFd = r.open(v.rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
  } catch (err) {
    if (err instanceof SyscallError && err.code === 'ENOTDIR') {
      throw new VolumeError(`${r.label(v.rootfsPath)} is not a directory in the image`);
    }
    throw err;
  }
  if (srcFd === undefined) return undefined; // the image has nothing there: an empty volume
  try {
    return await withUnshiftedView(v.hostDir, ids, async (view) => {
      const stats = await copyTree(`/proc/self/fd/${srcFd}`, view, { srcLabel: r.label(v.rootfsPath), dstLabel: v.hostDir });
      stats.entries += await restoreSidecar(r, v.rootfsPath, view, v.hostDir);
      return stats;
    });
  } finally {
    closeQuietly(srcFd);
  }
}

/**
 * Copies volume v into the rootfs. The first time (or when the target is not the directory the
 * last sync-out left) it fills a fresh sibling and swaps it in, so a failure leaves the old content
 * whole; after that it updates the target in place, keeping every entry that neither side changed
 * since the last sync-out (ctime moves with any change to content, attributes or xattrs and cannot
 * be set back), so stop/start of a container with gigabytes of inner images copies only what changed.
 * `persist` is called with the record updated.
 */
export async function syncOutVolume(r: Rootfs, v: CopyVolume, ids: IdRange, persist: () => void): Promise<CopyStats> {
  const startMs = Date.now();
  const name = path.posix.basename(v.rootfsPath);
  const parentInRoot = path.posix.dirname(v.rootfsPath);
  const parentFd = r.openDirCreating(parentInRoot);
  try {
    // Paths below the fd of the parent resolved in root; the labels are for messages.
    const parent = `/proc/self/fd/${parentFd}`;
    const target = `${parent}/${name}`;
    const fresh = `${parent}/.${name}.sysrunc-new`;
    const old = `${parent}/.${name}.sysrunc-old`;
    const label = (p: string) => r.label(path.posix.join(parentInRoot, path.posix.basename(p)));
    await removeTree(fresh, label(fresh));
    await removeTree(old, label(old));
    const prev = v.lastSyncOut;
    // A clock that went back since could stamp new changes with old times: copy everything then.
    const update = prev !== undefined && startMs > prev.endMs && dirIno(target, label(target)) === prev.targetIno;
    if (prev !== undefined) {
      v.lastSyncOut = undefined; // a crash mid-update must not leave the next one trusting the target
      persist();
    }
    const sidecar = new SidecarWriter(parent, sidecarName(name), r.label(parentInRoot));
    let seen = 0;
    const opts = {
      srcLabel: v.hostDir,
      dstLabel: r.label(v.rootfsPath),
      hooks: {
        onRejectedWhiteout: (w: Whiteout) => sidecar.addWhiteout(w),
        onXattrs: (p: Buffer, x: Xattrs) => {
          if (++seen === FAULT_MID_COPY_AFTER) faultPoint('copy-sync-out:mid-copy');
          sidecar.addXattrs(p, x);
        },
        onRejectedXattr: (_p: Buffer, name: string) => sidecar.keepsXattr(name),
      },
    };
    let stats: CopyStats;
    try {
      if (update) {
        stats = await withUnshiftedView(v.hostDir, ids, (view) => copyTree(view, target, { ...opts, unchanged: unchangedSince(prev) }));
        faultPoint('copy-sync-out:updated');
      } else {
        try {
          mkdirSync(fresh, { mode: 0o700 });
        } catch (err) {
          throw fromNodeError(err, 'mkdir', label(fresh));
        }
        try {
          stats = await withUnshiftedView(v.hostDir, ids, (view) => copyTree(view, fresh, opts));
          faultPoint('copy-sync-out:before-swap');
          await replaceWith(target, fresh, old, r.label(v.rootfsPath));
        } catch (err) {
          await removeTree(fresh).catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      sidecar.abandon();
      throw err;
    }
    sidecar.commit();
    await removeTree(old, label(old));
    const targetIno = dirIno(target, label(target));
    if (targetIno !== undefined) v.lastSyncOut = { startMs, endMs: Date.now(), targetIno };
    persist();
    return stats;
  } finally {
    closeQuietly(parentFd);
  }
}

/** An entry neither side changed since the sync-out that ran from prev.startMs to prev.endMs. */
export function unchangedSince(prev: { startMs: number; endMs: number }): (src: Stat, dst: Stat) => boolean {
  // 1 s covers the kernel's coarse timestamp clock lagging Date.now() by a tick.
  const srcBefore = prev.startMs - 1000;
  return (src, dst) =>
    src.ctimeMs < srcBefore && dst.ctimeMs <= prev.endMs &&
    // A directory's size is the filesystem's bookkeeping, not content.
    ((src.mode & S_IFMT) === S_IFDIR || src.size === dst.size) &&
    src.mtimeSec === dst.mtimeSec && src.mtimeNsec === dst.mtimeNsec &&
    src.mode === dst.mode && src.uid === dst.uid && src.gid === dst.gid &&
    src.rdevMajor === dst.rdevMajor && src.rdevMinor === dst.rdevMinor;
}

/** Inode number of directory p (not its device: overlayfs gets a new one per mount), or undefined. */
function dirIno(p: string, label: string): string | undefined {
  try {
    const st = lstatSync(p, { bigint: true });
    return st.isDirectory() ? st.ino.toString() : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromNodeError(err, 'lstat', label);
  }
}

/** Puts `fresh` at `target`: rename the old one aside if overlayfs allows it, else delete it first. */
async function replaceWith(target: string, fresh: string, old: string, label: string): Promise<void> {
  let st;
  try {
    st = lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'lstat', label);
  }
  if (st !== undefined) {
    if (!st.isDirectory()) {
      removeFile(target, label);
    } else {
      try {
        renameSync(target, old);
      } catch (err) {
        // overlayfs without redirect_dir cannot rename a directory that has lower content.
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw fromNodeError(err, 'rename', label);
        await removeTree(target, label);
      }
    }
  }
  try {
    renameSync(fresh, target);
  } catch (err) {
    throw fromNodeError(err, 'rename', label);
  }
}

async function removeTree(p: string, label = p): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', label);
  }
}

function removeFile(p: string, label = p): void {
  try {
    unlinkSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'unlink', label);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // an fd we opened ourselves; a close error has nothing left to tell
  }
}
