// File-system helpers of the volume manager: checks, directories, and removals that never reach
// through a mount into a container's layer.
import { chownSync, closeSync, lstatSync, mkdirSync, statfsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { mountsUnder, unmount } from '../../host/mount.ts';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { VolumeError } from './errors.ts';
import { detachLayerView, removeLayerLeftovers } from './in-layer.ts';
import { OVERLAYFS_SUPER_MAGIC, type VolumeRec } from './records.ts';
import type { IdRange } from './shift-view.ts';

export function volumeDirName(mountpoint: string): string {
  const slug = mountpoint.slice(1).replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 180);
  const hash = createHash('sha256').update(mountpoint).digest('hex').slice(0, 8);
  return `${slug}-${hash}`;
}

export function checkId(id: string): void {
  if (!/^[\w+\-.]{1,255}$/.test(id) || id === '.' || id === '..') throw new VolumeError(`invalid container id ${JSON.stringify(id)}`);
}

export function checkIds(id: string, ids: IdRange): void {
  for (const [k, v] of Object.entries(ids)) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new VolumeError(`create volumes for ${id}: invalid ${k} ${v}`);
  }
  if (ids.uid === 0 || ids.gid === 0) throw new VolumeError(`create volumes for ${id}: refusing host root as the container's root`);
  if (ids.size === 0) throw new VolumeError(`create volumes for ${id}: empty id range`);
}

export function checkMountpoint(id: string, m: string): string {
  if (!path.posix.isAbsolute(m)) throw new VolumeError(`create volumes for ${id}: mountpoint ${JSON.stringify(m)} is not absolute`);
  const norm = path.posix.resolve(m);
  if (norm === '/') throw new VolumeError(`create volumes for ${id}: refusing a volume over /`);
  return norm;
}

export function fsTypeOf(p: string): number {
  try {
    return statfsSync(p).type;
  } catch (err) {
    throw fromNodeError(err, 'statfs', p);
  }
}

export function refuseOverlay(dir: string, what: string): void {
  let type: number;
  try {
    type = statfsSync(dir).type;
  } catch (err) {
    throw new VolumeError(`${what}: ${fromNodeError(err, 'statfs', dir).message}`);
  }
  if (type === OVERLAYFS_SUPER_MAGIC) {
    throw new VolumeError(`${what}: ${dir} is on overlayfs; store volumes must be on a filesystem an inner overlayfs can use (ext4, xfs, btrfs)`);
  }
}

/** dir, or its closest ancestor that exists (what a mkdir -p of dir would land on). */
export function nearestExisting(dir: string): string {
  let p = dir;
  while (!exists(p) && p !== path.dirname(p)) p = path.dirname(p);
  return p;
}

/** Runs a node:fs call, reporting a failure as "op path: CODE (text)". */
export function fsCall<T>(op: string, p: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNodeError(err, op, p);
  }
}

export function ensureDir(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    throw fromNodeError(err, 'mkdir', dir);
  }
}

/** The per-container directory: only the container's root (and host root) may traverse it. */
export function ensureOwnedDir(dir: string, mode: number, ids: IdRange): void {
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(err, 'mkdir', dir);
  }
  fsCall('chown', dir, () => chownSync(dir, ids.uid, ids.gid));
}

export function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes dir after detaching every mount at or below it: an attached in-layer view would
 * otherwise let a recursive removal reach into the container's layer and delete its data.
 */
export async function removeUnmounted(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir).reverse()) unmount(mp, { detach: true });
  const left = mountsUnder(dir);
  if (left.length > 0) throw new SyscallError('umount2', left[0], 16 /* EBUSY */, 'still mounted after a detach; not removing the tree below it');
  await removeTree(dir);
}

/** Removes what a volume has under the root (never an in-layer volume's data) and a half-made sync-in. */
export async function discardVolumeDir(v: VolumeRec): Promise<void> {
  detachLayerView(v.hostDir);
  await removeUnmounted(v.hostDir);
  if (v.layer !== undefined && exists(v.layer.upperdir)) await removeLayerLeftovers(v.layer.upperdir, v.rootfsPath);
}

/** An in-layer volume whose layer no longer exists, while this start brings a different one. */
export function layerGone(v: VolumeRec, upperdir: string | undefined): boolean {
  return v.layer !== undefined && upperdir !== undefined && upperdir !== v.layer.upperdir && !exists(v.layer.upperdir);
}

export async function removeTree(p: string, label = p): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', label);
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // an fd we opened ourselves; a close error has nothing left to tell
  }
}

export function isStateFileDir(dir: string, stateFile: string): boolean {
  return stateFile === dir || stateFile.startsWith(`${dir}/`);
}
