// The cgroup mounts the facts of every create need, kept between creates instead of read from
// /proc/self/mountinfo each time (it grows with every container running, and its read waits on
// the mount table's lock that every runc starting holds). A kept list is used only while each of
// its mounts is still the very mount it was (the unique mount id at its mount point, Linux 6.8+)
// and it has a mount for every hierarchy the caller is in that had one before; anything else
// reads mountinfo again. Kernels without unique mount ids read mountinfo every time, as before.
import { cgroupHierarchies, cgroupMountsOf, type CgroupHierarchy, type CgroupMount } from './cgroups.ts';
import type { MountInfo } from './mount.ts';
import { uniqueMountAt } from './statmount.ts';

interface KeptMounts {
  readonly mounts: readonly CgroupMount[];
  readonly ids: readonly bigint[];
  /** Hierarchies (as in /proc/<pid>/cgroup) that had no mount when the list was read. */
  readonly unmounted: ReadonlySet<string>;
}

let kept: KeptMounts | undefined;

function stillMounted(k: KeptMounts): boolean {
  return k.mounts.every((m, i) => {
    try {
      const at = uniqueMountAt(m.mountpoint);
      return at !== undefined && at.mountRoot && at.uniqueId === k.ids[i];
    } catch {
      return false;
    }
  });
}

function keep(mounts: CgroupMount[], unmounted: ReadonlySet<string>): KeptMounts | undefined {
  const ids: bigint[] = [];
  for (const m of mounts) {
    const at = uniqueMountAt(m.mountpoint);
    if (at === undefined || !at.mountRoot) return undefined;
    ids.push(at.uniqueId);
  }
  return { mounts, ids, unmounted };
}

/** cgroupHierarchies of pid with the host's cgroup mounts, mountinfo read only when they changed. */
export function cgroupHierarchiesKept(pid: number, mountInfo: () => readonly MountInfo[]): CgroupHierarchy[] {
  if (kept !== undefined && stillMounted(kept)) {
    const unmatched = new Set<string>();
    const found = cgroupHierarchies(pid, kept.mounts, unmatched);
    if ([...unmatched].every((c) => kept?.unmounted.has(c) === true)) return found;
  }
  const mounts = cgroupMountsOf(mountInfo());
  const unmatched = new Set<string>();
  const found = cgroupHierarchies(pid, mounts, unmatched);
  kept = keep(mounts, unmatched);
  return found;
}

/** Forgets the kept list (tests). */
export function forgetCgroupMounts(): void {
  kept = undefined;
}
