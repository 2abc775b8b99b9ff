// Store volumes kept in the container's own layer ("in-layer" mode). The data of /var/lib/docker
// and friends lives at rest in the overlay's upper dir, at the store path, owned by the image's
// (0-based, host-root) ids, exactly where `docker commit`, `docker cp` and `docker diff` look. The
// container gets an idmapped bind mount of that directory as its store volume: a bind mount is not
// overlayfs, so an inner overlay2 runs on it, and the idmap shifts ids on the fly, so nothing is
// chowned. Stopping moves no data: the view is detached and a sidecar of what Docker's layer format
// drops (sidecar.ts) is written; starting again attaches a new view of the same directory.
//
// Crash safety: the data never moves after the first sync-in, which fills a hidden sibling and
// renames it into place (atomic); a directory at the store path is therefore always complete and
// is adopted as it is. The view is only a mount: losing it loses nothing.
import { chmodSync, chownSync, closeSync, constants as fsConstants, mkdirSync, readdirSync, renameSync, statfsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  AT_EMPTY_PATH, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, SyscallError, fromNodeError, libc, sysFail,
} from '../../host/libc.ts';
import { NotMountedError, isMountPoint, moveMountTo, setIdmap, unmount } from '../../host/mount.ts';
import { O_PATH, S_IFCHR, S_IFMT, lgetxattrs, lsetxattr, lstatx, lutimens } from '../../host/fs-native.ts';
import { probeIdmapSupport } from '../../host/idmap-probe.ts';
import { createUserNamespaceFd } from '../../host/userns.ts';
import { copyTree, copyableXattrs, type CopyStats } from './copy-tree.ts';
import { faultPoint } from './fault.ts';
import { withRootfs, withRootfsSync, type Rootfs } from '../../host/in-root.ts';
import { SidecarWriter, sidecarName } from './sidecar.ts';
import { restoreSidecar } from './sidecar-restore.ts';
import { OVERLAYFS_SUPER_MAGIC } from './records.ts';
import type { IdRange } from './shift-view.ts';

const OPAQUE = 'trusted.overlay.opaque';
const SLASH = Buffer.from('/');

/** Why a layer cannot hold the store volumes (the caller then copies, as before), or undefined. */
export function layerUnusable(upperdir: string): string | undefined {
  let type: number;
  try {
    type = statfsSync(upperdir).type;
  } catch (err) {
    return fromNodeError(err, 'statfs', upperdir).message;
  }
  if (type === OVERLAYFS_SUPER_MAGIC) return `upper dir ${upperdir} is on overlayfs, where an inner overlay2 cannot run`;
  const idmap = probeIdmapSupport(upperdir);
  return idmap.supported ? undefined : idmap.reason;
}

export interface LayerSyncIn {
  /** The directory was there already (an earlier life of the container): adopted, nothing copied. */
  readonly adopted: boolean;
  readonly stats?: CopyStats;
}

/**
 * Makes sure the store path exists as a directory in the upper dir. A directory already there is
 * complete (see the header) and is kept. Otherwise the image's content at that path (read through
 * the merged rootfs, with the sidecar a committed image may carry) is copied into a hidden sibling,
 * marked opaque so the image's own copy below cannot show through deletions, and renamed into place.
 */
export async function syncIntoLayer(merged: Rootfs, upperdir: string, rootfsPath: string): Promise<LayerSyncIn> {
  return withRootfs(upperdir, async (upper) => {
    const existing = upper.open(rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
    if (existing !== undefined) {
      closeSync(existing);
      return { adopted: true };
    }
    const name = path.posix.basename(rootfsPath);
    const parentFd = openParentLikeImage(merged, upper, path.posix.dirname(rootfsPath));
    try {
      const parent = `/proc/self/fd/${parentFd}`;
      const fresh = `${parent}/.${name}.sysrunc-in`;
      const freshLabel = upper.label(path.posix.join(path.posix.dirname(rootfsPath), `.${name}.sysrunc-in`));
      await removeTree(fresh, freshLabel);
      const srcFd = merged.open(rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
      let stats: CopyStats | undefined;
      try {
        mkdirOrFail(fresh, srcFd === undefined ? 0o755 : 0o700, freshLabel);
        if (srcFd !== undefined) {
          stats = await copyTree(`/proc/self/fd/${srcFd}`, fresh, { srcLabel: merged.label(rootfsPath), dstLabel: freshLabel });
          stats.entries += await restoreSidecar(merged, rootfsPath, fresh, freshLabel);
          lsetxattr(Buffer.from(fresh), OPAQUE, Buffer.from('y'), freshLabel);
        }
      } catch (err) {
        await removeTree(fresh, freshLabel).catch(() => undefined);
        throw err;
      } finally {
        if (srcFd !== undefined) closeSync(srcFd);
      }
      faultPoint('layer-sync-in:before-rename');
      try {
        renameSync(fresh, `${parent}/${name}`);
      } catch (err) {
        throw fromNodeError(err, 'rename', upper.label(rootfsPath));
      }
      return { adopted: false, ...(stats === undefined ? {} : { stats }) };
    } finally {
      closeSync(parentFd);
    }
  });
}

/**
 * O_PATH fd of directory dir in the upper dir, creating the missing components with the owner, mode
 * and times the merged rootfs shows for them (what an overlay copy-up would give them).
 */
function openParentLikeImage(merged: Rootfs, upper: Rootfs, dir: string): number {
  const parts = dir.split('/').filter((p) => p !== '');
  for (let i = 1; i <= parts.length; i++) {
    const sub = `/${parts.slice(0, i).join('/')}`;
    const had = upper.open(sub, O_PATH | fsConstants.O_DIRECTORY);
    if (had !== undefined) {
      closeSync(had);
      continue;
    }
    closeSync(upper.openDirCreating(sub));
    const like = merged.open(sub, O_PATH | fsConstants.O_DIRECTORY);
    if (like === undefined) continue;
    try {
      const st = lstatx(Buffer.from(`/proc/self/fd/${like}/.`), merged.label(sub));
      const label = upper.label(sub);
      const fd = upper.open(sub, O_PATH | fsConstants.O_DIRECTORY);
      if (fd === undefined) continue;
      try {
        const p = `/proc/self/fd/${fd}/.`; // "/." follows the magic link, nothing else
        try {
          chownSync(p, st.uid, st.gid);
        } catch (err) {
          throw fromNodeError(err, 'chown', label);
        }
        try {
          chmodSync(p, st.mode & 0o7777);
        } catch (err) {
          throw fromNodeError(err, 'chmod', label);
        }
        lutimens(Buffer.from(p), st, label);
      } finally {
        closeSync(fd);
      }
    } finally {
      closeSync(like);
    }
  }
  return upper.openDirCreating(dir);
}

/** Removes a half-made sync-in sibling (after a crash); the store path itself is never touched. */
export async function removeLayerLeftovers(upperdir: string, rootfsPath: string): Promise<void> {
  const leftover = path.join(upperdir, path.posix.dirname(rootfsPath), `.${path.posix.basename(rootfsPath)}.sysrunc-in`);
  try {
    await withRootfs(upperdir, async (upper) => {
      const parentFd = upper.open(path.posix.dirname(rootfsPath), O_PATH | fsConstants.O_DIRECTORY);
      if (parentFd === undefined) return;
      try {
        await removeTree(`/proc/self/fd/${parentFd}/.${path.posix.basename(rootfsPath)}.sysrunc-in`, leftover);
      } finally {
        closeSync(parentFd);
      }
    });
  } catch (err) {
    if (err instanceof SyscallError && err.code === 'ENOENT') return; // the layer is gone (docker rm)
    throw err;
  }
}

/**
 * Attaches at mountpoint (an empty directory, created if missing) an idmapped view of the store
 * path in the upper dir, in which on-disk id n reads and writes as the container's host id base+n.
 * A view left attached there (a crash) is replaced.
 */
export function attachLayerView(upperdir: string, rootfsPath: string, mountpoint: string, ids: IdRange): void {
  withRootfsSync(upperdir, (upper) => {
    const dirFd = upper.open(rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
    if (dirFd === undefined) throw new SyscallError('openat2', upper.label(rootfsPath), 2 /* ENOENT */, 'store volume directory missing from the layer');
    try {
      attachViewOfDir(dirFd, upper.label(rootfsPath), mountpoint, ids);
    } finally {
      closeSync(dirFd);
    }
  });
}

/** attachLayerView's mount, of the directory dirFd (an O_PATH fd) wherever it is. */
export function attachViewOfDir(dirFd: number, label: string, mountpoint: string, ids: IdRange): void {
  detachLayerView(mountpoint);
  mkdirOrFail(mountpoint, 0o755, mountpoint, true);
  const c = libc();
  let treeFd = -1;
  try {
    treeFd = c.openTree(dirFd, '', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (treeFd === -1) throw sysFail('open_tree', label);
    const usernsFd = createUserNamespaceFd(
      [{ containerID: 0, hostID: ids.uid, size: ids.size }],
      [{ containerID: 0, hostID: ids.gid, size: ids.size }],
    );
    try {
      setIdmap(treeFd, usernsFd, { label });
    } finally {
      c.close(usernsFd);
    }
    moveMountTo(treeFd, mountpoint);
  } finally {
    if (treeFd !== -1) c.close(treeFd);
  }
}

/** Detaches the view at mountpoint, if any (lazily: the container's own copies of it may still be going). */
export function detachLayerView(mountpoint: string): void {
  for (;;) {
    if (!isMountPoint(mountpoint)) return;
    try {
      unmount(mountpoint, { detach: true });
    } catch (err) {
      if (err instanceof NotMountedError) return;
      throw err;
    }
  }
}

/** An in-layer volume's stop: the view at mountpoint goes and the sidecar is written; the data does not move. */
export async function stopLayerVolume(mountpoint: string, upperdir: string, rootfsPath: string): Promise<LayerSidecarReport | undefined> {
  detachLayerView(mountpoint);
  faultPoint('layer-sync-out:detached');
  return writeLayerSidecar(upperdir, rootfsPath);
}

export interface LayerSidecarReport {
  readonly entries: number;
  readonly whiteouts: number;
}

/**
 * Writes the sidecar next to the store path in the upper dir: the inner overlays' whiteouts (a
 * committed image loses them: Docker turns them into its own deletions) and every xattr Docker's
 * layer tars drop. A metadata-only walk: no file content is read. Returns undefined when the
 * layer or the store path is gone (the container was removed).
 */
export async function writeLayerSidecar(upperdir: string, rootfsPath: string): Promise<LayerSidecarReport | undefined> {
  try {
    return await withRootfs(upperdir, async (upper) => {
      const dirFd = upper.open(rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
      if (dirFd === undefined) return undefined;
      const parentFd = upper.open(path.posix.dirname(rootfsPath), O_PATH | fsConstants.O_DIRECTORY);
      try {
        if (parentFd === undefined) return undefined;
        const name = sidecarName(path.posix.basename(rootfsPath));
        const writer = new SidecarWriter(`/proc/self/fd/${parentFd}`, name, upper.label(path.posix.dirname(rootfsPath)));
        try {
          const report = await walkMetadata(Buffer.from(`/proc/self/fd/${dirFd}/.`), upper.label(rootfsPath), writer);
          faultPoint('layer-sync-out:before-sidecar');
          writer.commit();
          return report;
        } catch (err) {
          writer.abandon();
          throw err;
        }
      } finally {
        closeSync(dirFd);
        if (parentFd !== undefined) closeSync(parentFd);
      }
    });
  } catch (err) {
    if (err instanceof SyscallError && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

async function walkMetadata(root: Buffer, label: string, writer: SidecarWriter): Promise<LayerSidecarReport> {
  const report = { entries: 0, whiteouts: 0 };
  let lastYield = Date.now();
  const visit = async (p: Buffer, rel: Buffer): Promise<void> => {
    const shown = rel.length === 0 ? label : `${label}/${rel.toString()}`;
    writer.addXattrs(rel, copyableXattrs(lgetxattrs(p, shown)));
    let entries;
    try {
      entries = readdirSync(p, { encoding: 'buffer', withFileTypes: true });
    } catch (err) {
      throw fromNodeError(err, 'readdir', shown);
    }
    for (const e of entries) {
      report.entries++;
      const cp = Buffer.concat([p, SLASH, e.name]);
      const crel = rel.length === 0 ? e.name : Buffer.concat([rel, SLASH, e.name]);
      if (e.isDirectory()) {
        await visit(cp, crel);
        continue;
      }
      const clabel = `${label}/${crel.toString()}`;
      const xattrs = copyableXattrs(lgetxattrs(cp, clabel));
      if (e.isCharacterDevice()) {
        const st = lstatx(cp, clabel);
        if ((st.mode & S_IFMT) === S_IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0) {
          writer.addWhiteout({ path: crel, stat: st, xattrs });
          report.whiteouts++;
          continue;
        }
      }
      writer.addXattrs(crel, xattrs);
    }
    if (Date.now() - lastYield > 20) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = Date.now();
    }
  };
  await visit(root, Buffer.alloc(0));
  return report;
}


function mkdirOrFail(p: string, mode: number, label: string, existingOk = false): void {
  try {
    mkdirSync(p, { mode });
  } catch (err) {
    if (existingOk && (err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw fromNodeError(err, 'mkdir', label);
  }
}

async function removeTree(p: string, label: string): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', label);
  }
}
