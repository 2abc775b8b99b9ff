// Mount points in a rootfs the container's root does not own (a pod sandbox's, spec-transform/
// pod-sandbox.ts), made as the host's root before runc runs. The image controls every path in
// there: each point is resolved inside the rootfs (host/in-root.ts), never by a host path walk.
import { closeSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import type { HostAction } from '../../manager-api/v1.ts';
import { fromNodeError } from '../../host/libc.ts';
import { withRootfsSync, type Rootfs } from '../../host/in-root.ts';

type MountPointsAction = Extract<HostAction, { kind: 'mount-points' }>;

/** What is already there at a point (a file, a directory, a symlink runc resolves) is left as it is. */
export function makeMountPoints(action: MountPointsAction): void {
  withRootfsSync(action.root, (r) => {
    for (const point of action.points) {
      if (r.exists(point.destination)) continue;
      if (point.bindSource !== undefined && !isDirectory(point.bindSource)) makeEmptyFile(r, point.destination);
      else closeSync(r.openDirCreating(point.destination));
    }
  });
}

/** As runc decides a bind's mount point: a file unless the source is a directory (one it cannot stat: runc reports that). */
function isDirectory(source: string): boolean {
  try {
    return statSync(source).isDirectory();
  } catch {
    return true;
  }
}

function makeEmptyFile(r: Rootfs, inRoot: string): void {
  const parentFd = r.openDirCreating(path.posix.dirname(inRoot));
  try {
    // O_EXCL: a symlink put there meanwhile is not followed (EEXIST, and runc resolves it in the rootfs).
    closeSync(openSync(`/proc/self/fd/${parentFd}/${path.posix.basename(inRoot)}`, 'wx', 0o644));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(err, 'create', r.label(inRoot));
  } finally {
    closeSync(parentFd);
  }
}
