// The cgroup-delegate host action: the container's own cgroup directories, made before runc runs
// and owned by the container's root with the files that manage children (never the limit files).
// runc finds them and uses them as its own; its delete removes them, and undo removes any it left.
import { mkdirSync, rmdirSync, statfsSync } from 'node:fs';
import { chownDirAndEntries } from '../host/fs-native.ts';
import { SyscallError } from '../host/libc.ts';
import path from 'node:path';
import { DELEGATED_FILES } from '../host/cgroups.ts';
import { isMountPoint } from '../host/mount.ts';
import { ServiceError } from './service-error.ts';

export function delegateCgroups(dirs: readonly string[], owner: { uid: number; gid: number }): void {
  const versions = dirs.map((dir) => {
    // Only below a cgroup mount, never the mount itself: the request names host paths.
    const version = cgroupVersionBelow(dir);
    if (version === undefined) throw new ServiceError('invalid-request', `cgroup-delegate ${dir}: not a cgroup below a cgroup or cgroup2 mount`);
    return version;
  });
  dirs.forEach((dir, i) => {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      // Only the files this cgroup version has, through one fd of the directory: ~10 per hierarchy
      // and ten hierarchies on a cgroup v1 host, on every create.
      chownDirAndEntries(dir, versions[i] === 2 ? DELEGATED_FILES_V2 : DELEGATED_FILES_V1, owner.uid, owner.gid);
    } catch (err) {
      const reason = err instanceof SyscallError ? err.message : ((err as NodeJS.ErrnoException).code ?? String(err));
      throw new ServiceError('host-action-failed', `cgroup-delegate ${dir}: ${reason}`);
    }
  });
}

/** DELEGATED_FILES by cgroup version (v1: the core files every hierarchy has; v2: the unified ones). */
const DELEGATED_FILES_V1 = DELEGATED_FILES.filter((f) => ['cgroup.procs', 'tasks', 'cgroup.clone_children', 'notify_on_release'].includes(f));
const DELEGATED_FILES_V2 = DELEGATED_FILES.filter((f) => ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'].includes(f));

/** Removes what runc's delete left (it removes its cgroups itself); a busy or non-empty one stays. */
export function undelegateCgroups(dirs: readonly string[]): void {
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw new Error(`remove cgroup ${dir}: ${code ?? String(err)}`);
    }
  }
}

// statfs(2) f_type of cgroup v1 and cgroup v2 (linux/magic.h).
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * An absolute, normalized path whose nearest existing directory is on a cgroup filesystem and
 * that is not itself a mount's root. Asked of the path itself (statfs, statx): reading
 * /proc/self/mountinfo for the cgroup mounts took most of a create's time in a burst (100
 * containers' mounts, and the mount table's lock contended by every runc starting).
 */
export function isBelowCgroupMount(dir: string): boolean {
  return cgroupVersionBelow(dir) !== undefined;
}

/** isBelowCgroupMount's answer as the cgroup version of that file system (1 or 2), or undefined. */
function cgroupVersionBelow(dir: string): 1 | 2 | undefined {
  if (!path.isAbsolute(dir) || path.normalize(dir) !== dir || dir === '/') return undefined;
  // statfs of the nearest existing directory: one call up from a new cgroup (the usual case, ten
  // hierarchies on a cgroup v1 host, every create), not an existence check and then a statfs.
  for (let existing = dir; ; existing = path.dirname(existing)) {
    let type: number;
    try {
      type = Number(statfsSync(existing).type);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existing !== '/') continue;
      return undefined;
    }
    if (existing === dir && isMountPoint(dir)) return undefined;
    return type === CGROUP_SUPER_MAGIC ? 1 : type === CGROUP2_SUPER_MAGIC ? 2 : undefined;
  }
}
