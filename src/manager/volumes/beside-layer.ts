// Store volumes beside the layer while the container runs (issue 25). An in-layer store volume
// (in-layer.ts) rests in the container's upper dir, but overlayfs warns about, and leaves
// undefined, any overlay whose layers lie below another live overlay's upper dir: every overlay an
// inner dockerd mounts on its store would. So while the container runs, the store directory lives
// beside the upper dir, in the engine's per-layer directory (dockerd's overlay2 and podman's
// containers/storage: <layer>/diff; containerd's overlayfs snapshotter: <snapshot>/fs), which the
// engine removes with the layer. It moves by rename(2) on one filesystem: O(1), no chown, the
// container's idmapped view follows the directory.
//
//   start: sysrunc's view is attached (register); the engine's overlay is unmounted; leaveLayer
//          renames <upper>/<store path> to <layer>/sysrunc-store.<name>; sysrunc's overlay is mounted.
//   stop:  sysrunc's overlay is unmounted; returnToLayer detaches the view and renames the directory
//          back to the store path; only then is the engine's overlay mounted again (or the engine
//          reads the layer: commit, cp, diff).
//
// Crash journal: the directory beside the layer is only ever made by renaming the whole store out
// of the layer, so "it exists" means "the data is there"; otherwise the data is in the layer.
// Every step is a single rename, so a crash leaves the data at one place or the other, never at
// both and never half; each step started again finds where it is and goes on.
import { closeSync, constants as fsConstants, lstatSync, openSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { O_PATH } from '../../host/fs-native.ts';
import { withRootfsSync } from '../../host/in-root.ts';
import { faultPoint } from './fault.ts';
import { attachLayerView, attachViewOfDir, detachLayerView, syncIntoLayer } from './in-layer.ts';
import type { Rootfs } from '../../host/in-root.ts';
import type { VolumeRec } from './records.ts';
import { volumeDirName } from './volume-fs.ts';
import type { IdRange } from './shift-view.ts';

export const BESIDE_PREFIX = 'sysrunc-store.';
// The upper dir's own name in the per-layer directory of each engine sysrunc knows to remove that
// directory whole with the layer (overlay2 and containers/storage: diff; containerd: fs).
const ENGINE_UPPER_NAMES = new Set(['diff', 'fs']);
const DISPLACED_SUFFIX = '.sysrunc-displaced';

/** A new in-layer volume's record: its upper dir, and where its data goes while the container runs. */
export function layerRecordFor(upperdir: string, rootfsPath: string): NonNullable<VolumeRec['layer']> {
  const place = besidePlace(upperdir, volumeDirName(rootfsPath));
  return { upperdir, ...('dir' in place ? { beside: place.dir } : { notBeside: place.whyNot }) };
}

/** layer as it is, or with layerRecordFor's placement when it has none (recorded before this existed). */
export function placedLayer(layer: VolumeRec['layer'], rootfsPath: string): VolumeRec['layer'] {
  if (layer === undefined || layer.beside !== undefined || layer.notBeside !== undefined) return layer;
  return { ...layer, ...layerRecordFor(layer.upperdir, rootfsPath) };
}

/** Where a store volume lives while its container runs, or why it must stay in the layer. */
export type BesidePlace = { readonly dir: string } | { readonly whyNot: string };

/** The directory beside upperdir for a store (named dirName there), if the layout allows one. */
export function besidePlace(upperdir: string, dirName: string): BesidePlace {
  if (!ENGINE_UPPER_NAMES.has(path.basename(upperdir))) {
    return { whyNot: `upper dir ${upperdir} is not an engine's <layer>/diff or <snapshot>/fs, so no directory beside it is known to go with the layer` };
  }
  const parent = path.dirname(upperdir);
  let upperDev: number;
  let parentDev: number;
  try {
    upperDev = lstatSync(upperdir).dev;
    parentDev = lstatSync(parent).dev;
  } catch (err) {
    return { whyNot: fromNodeError(err, 'lstat', upperdir).message };
  }
  if (upperDev !== parentDev) {
    return { whyNot: `upper dir ${upperdir} is a filesystem of its own (not ${parent}'s): the store could only be copied into the layer, not renamed` };
  }
  return { dir: path.join(parent, `${BESIDE_PREFIX}${dirName}`) };
}

export function isBeside(dir: string): boolean {
  try {
    return lstatSync(dir).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fromNodeError(err, 'lstat', dir);
  }
}

/** Attaches the container's idmapped view of the store kept beside the layer at mountpoint. */
export function attachBesideView(beside: string, mountpoint: string, ids: IdRange): void {
  let fd: number;
  try {
    fd = openSync(beside, O_PATH | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    throw fromNodeError(err, 'open', beside);
  }
  try {
    attachViewOfDir(fd, beside, mountpoint, ids);
  } finally {
    closeSync(fd);
  }
}

/**
 * Renames the store directory out of the layer to beside. Nothing to do when it is beside already
 * (a start after a crash) or when the layer has none (then there is nothing to protect).
 */
export function leaveLayer(upperdir: string, rootfsPath: string, beside: string): void {
  if (isBeside(beside)) return;
  inParentOf(upperdir, rootfsPath, (parent, label) => {
    const name = path.posix.basename(rootfsPath);
    removeDisplaced(parent, name, label);
    let st;
    try {
      st = lstatSync(`${parent}/${name}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fromNodeError(err, 'lstat', label);
    }
    if (!st.isDirectory()) throw new SyscallError('rename', label, 20 /* ENOTDIR */, 'the store path in the layer is not a directory');
    faultPoint('layer-move-out:before-rename');
    rename(`${parent}/${name}`, beside, `${label} -> ${beside}`);
    faultPoint('layer-move-out:renamed');
  });
}

/**
 * Detaches the view and renames the store directory from beside back to its path in the layer.
 * Whatever the container left at that path in its layer meanwhile (it can unmount its store inside
 * and write there; `docker cp` into a running container lands there too) is not the store: it is
 * set aside and removed. Nothing to do when nothing is beside (the data is in the layer already,
 * or the engine removed the layer, and with it the directory beside).
 */
export function returnToLayer(upperdir: string, rootfsPath: string, beside: string, viewMountpoint: string): void {
  detachLayerView(viewMountpoint);
  if (!isBeside(beside)) return;
  inParentOf(upperdir, rootfsPath, (parent, label) => {
    const name = path.posix.basename(rootfsPath);
    const target = `${parent}/${name}`;
    let occupied = true;
    try {
      lstatSync(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'lstat', label);
      occupied = false;
    }
    if (occupied) {
      removeDisplaced(parent, name, label);
      rename(target, `${parent}/.${name}${DISPLACED_SUFFIX}`, label);
    }
    faultPoint('layer-move-in:before-rename');
    rename(beside, target, `${beside} -> ${label}`);
    faultPoint('layer-move-in:renamed');
    removeDisplaced(parent, name, label);
  });
}

/** Runs fn with the store path's parent directory in the layer, resolved in the layer as root. */
function inParentOf(upperdir: string, rootfsPath: string, fn: (parent: string, label: string) => void): void {
  withRootfsSync(upperdir, (upper) => {
    const dir = path.posix.dirname(rootfsPath);
    const parentFd = upper.open(dir, O_PATH | fsConstants.O_DIRECTORY);
    if (parentFd === undefined) throw new SyscallError('openat2', upper.label(dir), 2 /* ENOENT */, 'the store path\'s parent is missing from the layer');
    try {
      fn(`/proc/self/fd/${parentFd}`, upper.label(rootfsPath));
    } finally {
      closeSync(parentFd);
    }
  });
}

function removeDisplaced(parent: string, name: string, label: string): void {
  try {
    rmSync(`${parent}/.${name}${DISPLACED_SUFFIX}`, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', `${label}${DISPLACED_SUFFIX}`);
  }
}

function rename(from: string, to: string, label: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    throw fromNodeError(err, 'rename', label);
  }
}

/** What the volume manager keeps of an in-layer volume (records.ts VolumeRecord). */
interface LayerVolume {
  readonly mountpoint: string;
  readonly rootfsPath: string;
  readonly hostDir: string;
  readonly syncedIn: boolean;
  readonly layer?: { readonly upperdir: string; readonly beside?: string } | undefined;
}

/**
 * Moves each synced in-layer volume of a container beside its layer (to: 'beside', at a start)
 * or back into it (to: 'layer', at a stop). Goes on past a volume that cannot move and returns
 * one line for each: its data stays whole where it is, and the next start or stop finds it there.
 */
export function placeStores(id: string, volumes: readonly LayerVolume[], to: 'beside' | 'layer'): string[] {
  const problems: string[] = [];
  for (const v of volumes) {
    const beside = v.layer?.beside;
    if (v.layer === undefined || beside === undefined || !v.syncedIn) continue;
    try {
      if (to === 'beside') leaveLayer(v.layer.upperdir, v.rootfsPath, beside);
      else returnToLayer(v.layer.upperdir, v.rootfsPath, beside, v.hostDir);
    } catch (err) {
      const what = to === 'beside' ? `out of the layer to ${beside} (it stays in the layer while the container runs)` : `from ${beside} back into the layer (it stays beside it for the next start)`;
      problems.push(`container ${id}: store volume ${v.mountpoint} could not be moved ${what}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/**
 * Attaches the container's view of an in-layer volume: of the directory beside the layer when the
 * data is there (a crash left it there), else of the store path in the layer, made from the image's
 * content (merged) first if missing (syncIntoLayer adopts one that is there).
 */
export async function attachStore(merged: Rootfs, v: VolumeRec, ids: IdRange): Promise<void> {
  const upperdir = v.layer?.upperdir;
  if (upperdir === undefined) return;
  const beside = v.layer?.beside;
  if (beside !== undefined && isBeside(beside)) return attachBesideView(beside, v.hostDir, ids);
  await syncIntoLayer(merged, upperdir, v.rootfsPath);
  attachLayerView(upperdir, v.rootfsPath, v.hostDir, ids);
}
