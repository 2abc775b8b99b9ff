// An idmapped, detached view of a volume directory in which the container's host ids
// base..base+size-1 read and write as 0..size-1 (the image's ownership). Copying between a
// 0-based tree and this view shifts every id in one pass, ACL entries and file-capability root
// ids included, and nothing is ever attached to the mount table: the view is an fd that goes
// away with the process.
import { AT_FDCWD, AT_SYMLINK_NOFOLLOW, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, libc, sysFail } from '../../host/libc.ts';
import { setIdmap } from '../../host/mount.ts';
import { createUserNamespaceFd } from '../../host/userns.ts';
import { VolumeError, describe } from './errors.ts';

export interface IdRange {
  /** Host uid/gid of the container's root. */
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
}

/**
 * Runs fn with the path of an unshifted view of hostDir, then drops the view. The path is a
 * /proc/self/fd magic link: use it with absolute paths only. Never hand it to a program that
 * chdir()s into it: getcwd() in a detached mount says "/", and rsync, for one, then writes
 * into the host's root directory.
 */
export async function withUnshiftedView<T>(hostDir: string, ids: IdRange, fn: (view: string) => Promise<T>): Promise<T> {
  const treeFd = openUnshiftedView(hostDir, ids);
  try {
    return await fn(`/proc/self/fd/${treeFd}`);
  } finally {
    libc().close(treeFd);
  }
}

/** fd of a detached, unshifted view of hostDir (close-on-exec); the caller closes it. */
export function openUnshiftedView(hostDir: string, ids: IdRange): number {
  const c = libc();
  const treeFd = c.openTree(AT_FDCWD, hostDir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
  if (treeFd === -1) throw new VolumeError(`cannot open a view of ${hostDir}: ${sysFail('open_tree', hostDir).message}`);
  try {
    // The view's user namespace maps inside id base+n to host id n, so the on-disk id base+n
    // appears as n and chown(n) through the view stores base+n.
    const usernsFd = createUserNamespaceFd(
      [{ containerID: ids.uid, hostID: 0, size: ids.size }],
      [{ containerID: ids.gid, hostID: 0, size: ids.size }],
    );
    try {
      setIdmap(treeFd, usernsFd, { label: hostDir });
    } catch (err) {
      throw new VolumeError(`cannot shift ownership for ${hostDir}: idmapped mounts not usable there: ${describe(err)}`, { cause: err });
    } finally {
      c.close(usernsFd);
    }
    return treeFd;
  } catch (err) {
    c.close(treeFd);
    throw err;
  }
}
