// Per-container run dirs under the manager's run base: made for each container (traversable by its
// root only), removed without ever recursing through a mount.
import { chownSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { isMountPoint } from '../host/mount.ts';
import type { ContainerRecord } from './registry.ts';
import { containerRoot } from './host-executor.ts';
import { ServiceError } from './service-error.ts';
import { removeMountListener } from './lxcfs/mount-listener.ts';
import { removeRunEntry } from './remove-run-entry.ts';

export function makeRunDir(record: ContainerRecord): void {
  removeRunDir(record.runDir); // an empty one left by a crash
  mkdirSync(record.runDir, { mode: 0o700 });
  // Container root must traverse it (runc sets up mounts from inside the user namespace);
  // nobody else on the host can.
  const root = containerRoot(record);
  chownSync(record.runDir, root.uid, root.gid);
}

/** Removes a run dir whose mount targets were already removed; never recursive through mounts. */
export function removeRunDir(dir: string): void {
  removeMountListener(dir);
  // Mostly absent (a new container's, or a container without binds).
  for (const sub of ['mounts', 'layers', '']) removeRunEntry(path.join(dir, sub), 'dir');
}

/**
 * Removes a run dir left without a record (its mounts already detached): only empty placeholder
 * files and directories can be in it, and it refuses to descend into anything still mounted.
 */
export function removeUnmountedTree(dir: string): void {
  if (isMountPoint(dir)) throw new ServiceError('host-action-failed', `remove ${dir}: still a mount point`);
  const stat = lstatSync(dir);
  if (stat.isDirectory()) {
    for (const name of readdirSync(dir)) removeUnmountedTree(path.join(dir, name));
    rmdirSync(dir);
  } else {
    unlinkSync(dir);
  }
}
