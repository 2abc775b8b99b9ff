// The cgroup hierarchies a process is in, as runc will see them when it is that process: each line
// of /proc/<pid>/cgroup with the host mount of its hierarchy (from the manager's mountinfo: the
// manager runs in the host's mount namespace, like the runc it prepares for).
import { readFileSync } from 'node:fs';
import type { MountInfo } from './mount.ts';

export interface CgroupHierarchy {
  /** As in /proc/<pid>/cgroup: "cpu,cpuacct", "name=systemd", or "" for the unified (v2) hierarchy. */
  readonly controllers: string;
  /** The process's cgroup in it, e.g. "/" or "/system.slice/docker.service". */
  readonly path: string;
  /** Where the hierarchy is mounted, and which of its cgroups is the mount's root. */
  readonly mountpoint: string;
  readonly mountRoot: string;
}

export interface CgroupMount {
  readonly mountpoint: string;
  readonly root: string;
  readonly fstype: 'cgroup' | 'cgroup2';
  readonly superOptions: readonly string[];
}

/** The cgroup and cgroup2 mounts in /proc/self/mountinfo. */
export function cgroupMounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep === -1) continue;
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    const root = unescapeMountPath(fields[3] ?? '');
    const mountpoint = unescapeMountPath(fields[4] ?? '');
    mounts.push({ mountpoint, root, fstype, superOptions: superOptions.split(',') });
  }
  return mounts;
}

/** The hierarchies of a process with their mounts; hierarchies with no mount here are left out. */
/** The cgroup mounts of an already parsed mountinfo (readMountInfo): no second read of it. */
export function cgroupMountsOf(mountInfo: readonly MountInfo[]): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const m of mountInfo) {
    if (m.fsType === 'cgroup' || m.fsType === 'cgroup2') mounts.push({ mountpoint: m.mountPoint, root: m.root, fstype: m.fsType, superOptions: m.superOptions.split(',') });
  }
  return mounts;
}

/** unmatched: where given, gets the hierarchies (controllers, as in /proc/<pid>/cgroup) left out. */
export function cgroupHierarchies(pid: number, mounts: readonly CgroupMount[] = cgroupMounts(), unmatched?: Set<string>): CgroupHierarchy[] {
  const out: CgroupHierarchy[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first === -1 || second === -1) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    const mount = mounts.find((m) =>
      controllers === '' ? m.fstype === 'cgroup2' : m.fstype === 'cgroup' && controllers.split(',').every((c) => m.superOptions.includes(c)),
    );
    if (mount !== undefined) out.push({ controllers, path, mountpoint: mount.mountpoint, mountRoot: mount.root });
    else unmatched?.add(controllers);
  }
  return out;
}

/** Files of a cgroup directory that delegation hands over (systemd's Delegate=): never limits. */
export const DELEGATED_FILES = ['cgroup.procs', 'tasks', 'cgroup.clone_children', 'cgroup.subtree_control', 'cgroup.threads', 'notify_on_release'] as const;

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
