// The one impure step before the pipeline: resolve the host paths the transforms will name, so
// that the transforms themselves stay pure. Paths are resolved once here; the manager then opens
// exactly the resolved path without following any symlink, so a swap in between is refused.
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { storePathsFor } from '../common/store-paths.ts';
import { withRootfsSync } from '../host/in-root.ts';
import { boundingSetOf } from '../host/bounding-set.ts';
import path from 'node:path';
import { SysruncError } from '../common/errors.ts';
import { describeFsError } from '../oci/bundle.ts';
import type { Spec } from '../oci/spec.ts';
import type { OverlayFact, PathFact, Plan, RootfsFact } from './types.ts';
import type { CgroupHierarchy } from '../host/cgroups.ts';
import { cgroupHierarchiesKept } from '../host/cgroup-mount-cache.ts';
import { mountFlagsAt } from '../host/statmount.ts';
import { isMountPoint, mountIdOf, readMountInfo, type MountInfo } from '../host/mount.ts';
import { topOverlayAt } from '../host/overlay-mountinfo.ts';
import { isBindMount, wantsOwnership } from './bind-mount-ownership.ts';
import { engineOf, type Engine } from './engine-capabilities.ts';

/** The plan's host facts (described there), and what the manager needs to make store volumes. */
export type HostFacts = Pick<Plan, 'rootfs' | 'bindSources' | 'hostCapabilities' | 'systemdInit' | 'hostNamespaces' | 'cgroups' | 'kernelFsDirs' | 'lockedBindFlags'> & {
  readonly storeVolumes: StoreVolumesFact;
  readonly engine: Engine;
};

export interface StoreVolumesFact {
  /** In-container store paths this image uses and no caller mount covers, parents first. */
  readonly mountpoints: readonly string[];
  /** Docker removes the container when it exits (--rm): nothing to sync out. */
  readonly autoRemove: boolean;
}

/**
 * The caller is the process that will become runc (its pid, through /proc): its namespaces are
 * what "the host's" means for this container, and its bounding set is what runc can grant.
 */
export interface CallerProcess {
  readonly pid: number;
  /** runc's --systemd-cgroup flag on the call. */
  readonly systemdCgroup: boolean;
  /**
   * The host uid and gid the container's root is, when the caller brings its own user namespace:
   * a rootfs whose top directory they already own was shifted by the engine (containerd 2.x idmaps
   * a user-namespaced pod's overlay layers itself, then detaches them), and is left as it is.
   */
  readonly callerRoot?: { readonly uid: number; readonly gid: number };
}

export function gatherHostFacts(spec: Spec, bundleDir: string, caller: CallerProcess, containerId: string): HostFacts {
  const rootRequested = path.resolve(bundleDir, spec.root?.path ?? 'rootfs');
  const rootPath = resolvePath(rootRequested, 'root.path');
  if (rootPath.kind !== 'dir') throw new SysruncError(`root.path ${rootRequested}: not a directory`);
  const shiftedByEngine = caller.callerRoot !== undefined && ownedBy(rootPath.resolved, caller.callerRoot);
  // Read once for the overlay, the caller's cgroups and the binds' locked flags (it grows with
  // every running container, and its lock is contended by every runc starting).
  const mountInfo = lazily(readMountInfo);
  const rootfs: RootfsFact = { ...rootPath, overlay: shiftedByEngine ? undefined : overlayAt(rootPath.resolved, mountInfo), ...(shiftedByEngine ? { shiftedByEngine } : {}) };
  // A relative root.path names something inside the bundle; it may not lead out of it.
  if (!path.isAbsolute(spec.root?.path ?? 'rootfs')) {
    const realBundle = realpathSync(bundleDir);
    if (rootfs.resolved !== realBundle && !rootfs.resolved.startsWith(`${realBundle}/`)) {
      throw new SysruncError(`root.path ${rootRequested}: resolves to ${rootfs.resolved}, outside the bundle ${realBundle}`);
    }
  }

  const bindSources = new Map<number, PathFact>();
  (spec.mounts ?? []).forEach((mount, index) => {
    if (mount.source === undefined || !path.isAbsolute(mount.source)) return;
    if (!wantsOwnership(mount, path.normalize(mount.source))) return;
    const fact = resolvePath(mount.source, `mount ${mount.destination}: source`);
    if (wantsOwnership(mount, fact.resolved)) bindSources.set(index, fact);
  });
  return {
    rootfs,
    bindSources,
    hostCapabilities: boundingSetOf(caller.pid),
    engine: engineOf(spec, containerId),
    systemdInit: runsSystemd(spec, rootfs.resolved),
    hostNamespaces: hostNamespacesOf(spec, caller.pid),
    storeVolumes: { mountpoints: usedStorePaths(spec, rootfs.resolved), autoRemove: dockerAutoRemove(spec) },
    cgroups: { hierarchies: callerCgroups(caller.pid, mountInfo), systemdDriver: caller.systemdCgroup },
    kernelFsDirs: kernelFsDirs(),
    lockedBindFlags: lockedBindFlags(spec, mountInfo),
  };
}

function lazily<T>(read: () => T): () => T {
  let value: { readonly v: T } | undefined;
  return () => (value ??= { v: read() }).v;
}

const LOCKABLE = ['nosuid', 'nodev', 'noexec'] as const;

/**
 * Per bind mount (by index), the nosuid/nodev/noexec flags of the host mount its source is on.
 * A user namespace cannot clear them on a bind of that mount (the kernel locks them), and runc
 * 1.1 remounts a bind with exactly the flags the config lists: without these, a read-only bind
 * of, say, containerd's sandbox shm (a nosuid,nodev,noexec tmpfs) fails with EPERM.
 */
function lockedBindFlags(spec: Spec, mountInfo: () => readonly MountInfo[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  let mounts: Map<number, string> | undefined;
  const fromMountInfo = (mountId: number): string[] => {
    mounts ??= new Map(mountInfo().map((i) => [i.id, i.options]));
    return (mounts.get(mountId) ?? '').split(',');
  };
  (spec.mounts ?? []).forEach((m, index) => {
    if (m.source === undefined || !path.isAbsolute(m.source) || !isBindMount(m)) return;
    let options: string[];
    try {
      // Asked of the source's own mount where the kernel can (statmount), else mountinfo's line.
      options = mountFlagsAt(m.source) ?? fromMountInfo(mountIdOf(m.source));
    } catch {
      return; // a missing source is runc's to report
    }
    const locked = LOCKABLE.filter((f) => options.includes(f) && !(m.options ?? []).includes(f));
    if (locked.length > 0) out.set(index, locked);
  });
  return out;
}

// Each with the host path whose presence says the container's sysfs (or /dev) can take a mount there.
const KERNEL_FS_DIRS: ReadonlyArray<readonly [string, string]> = [
  ['/sys/kernel/debug', '/sys/kernel/debug'],
  ['/sys/kernel/tracing', '/sys/kernel/tracing'],
  ['/sys/kernel/config', '/sys/kernel/config'],
  ['/sys/fs/fuse/connections', '/sys/fs/fuse/connections'],
  ['/dev/hugepages', '/sys/kernel/mm/hugepages'],
];

let kernelFsCache: string[] | undefined;

/** The kernel's own directories do not change while the manager runs: looked up once. */
function kernelFsDirs(): string[] {
  kernelFsCache ??= KERNEL_FS_DIRS.filter(([, witness]) => existsSync(witness)).map(([dir]) => dir);
  return kernelFsCache;
}

function callerCgroups(pid: number, mountInfo: () => readonly MountInfo[]): CgroupHierarchy[] {
  try {
    return cgroupHierarchiesKept(pid, mountInfo);
  } catch (err) {
    throw new SysruncError(`/proc/${pid}/cgroup: ${describeFsError(err)}`);
  }
}

const DOCKERD_BINARIES = ['/usr/bin/dockerd', '/usr/local/bin/dockerd', '/usr/sbin/dockerd'];
const inBinDirs = (name: string) => ['/usr/bin', '/usr/local/bin', '/usr/sbin'].map((d) => `${d}/${name}`);
/** Store paths an engine creates at its first start (none exists in a fresh image), by the engine's binaries. */
const CREATED_BY: Readonly<Record<string, readonly string[]>> = {
  '/var/lib/containers/storage': ['podman', 'buildah', 'crio'].flatMap(inBinDirs),
};

/**
 * Store paths get a volume when the image uses them: they exist in it, or the image ships the
 * engine that creates them at first start (dockerd for the Docker data root, podman, buildah or
 * CRI-O for containers/storage). An image without them gets no volumes.
 */
export function usedStorePaths(spec: Spec, rootfs: string): string[] {
  return withRootfsSync(rootfs, (r) => {
    const { paths, dockerDataRoot } = storePathsFor({ rootfs: r, mountDestinations: (spec.mounts ?? []).map((m) => m.destination) });
    // One openat2 each, resolved in root by the kernel (most candidates are missing).
    const creators = (p: string) => (p === dockerDataRoot ? DOCKERD_BINARIES : (CREATED_BY[p] ?? []));
    return paths.filter((p) => r.exists(p) || creators(p).some((c) => r.exists(c)));
  });
}

/** Docker's --rm, read from the container's hostconfig.json beside the /etc/hostname it bind-mounts. */
function dockerAutoRemove(spec: Spec): boolean {
  const hostname = (spec.mounts ?? []).find((m) => m.destination === '/etc/hostname' && m.source?.startsWith('/'));
  if (hostname?.source === undefined) return false;
  try {
    const hostConfig = JSON.parse(readFileSync(path.join(path.dirname(hostname.source), 'hostconfig.json'), 'utf8')) as { AutoRemove?: unknown };
    return hostConfig.AutoRemove === true;
  } catch {
    return false;
  }
}

const NS_FILES: Readonly<Record<string, string>> = { network: 'net', mount: 'mnt', pid: 'pid', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time' };

function hostNamespacesOf(spec: Spec, callerPid: number): Set<string> {
  const shared = new Set(Object.keys(NS_FILES));
  for (const ns of spec.linux?.namespaces ?? []) {
    if (ns.path === undefined || ns.path === '') {
      shared.delete(ns.type);
      continue;
    }
    const file = NS_FILES[ns.type];
    if (file === undefined) continue;
    let joined;
    let own;
    try {
      joined = statSync(ns.path);
      own = statSync(`/proc/${callerPid}/ns/${file}`);
    } catch (err) {
      throw new SysruncError(`linux.namespaces ${ns.type} path ${ns.path}: ${describeFsError(err)}`);
    }
    if (joined.dev !== own.dev || joined.ino !== own.ino) shared.delete(ns.type);
  }
  return shared;
}

const INIT_PATHS = new Set(['/sbin/init', '/usr/sbin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd']);

/** Whether the container's first process is systemd: its args name init, and init is systemd in the image. */
function runsSystemd(spec: Spec, rootfs: string): boolean {
  const arg0 = spec.process?.args?.[0];
  if (arg0 === undefined || !INIT_PATHS.has(arg0)) return false;
  return path.basename(resolveInsideRootfs(rootfs, arg0) ?? '') === 'systemd';
}

/** lstat results by host path, shared by the hops of one lookup (undefined: no such entry). */
type LstatCache = Map<string, Stats | undefined>;

/**
 * Follows symlinks the way the container would see them (absolute targets relative to its root);
 * undefined when the path does not exist there.
 */
export function resolveInsideRootfs(rootfs: string, file: string, hops = 0, lstats: LstatCache = new Map()): string | undefined {
  if (hops > 40) return undefined;
  const parts = file.split('/').filter(Boolean);
  let current = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = path.posix.join(current, parts[i] as string);
    // lstat first: a readlink of every component that is no symlink threw an error each (EINVAL),
    // and building those errors was most of the cost of looking up the store paths per create.
    let target: string;
    try {
      const hostPath = path.join(rootfs, next);
      let st = lstats.get(hostPath);
      if (!lstats.has(hostPath)) {
        st = lstatSync(hostPath, { throwIfNoEntry: false });
        lstats.set(hostPath, st);
      }
      if (st === undefined) return undefined;
      if (!st.isSymbolicLink()) {
        // A regular file has no entries below it.
        if (i < parts.length - 1 && !st.isDirectory()) return undefined;
        current = next;
        continue;
      }
      target = readlinkSync(hostPath);
    } catch {
      return undefined;
    }
    const rest = parts.slice(i + 1).join('/');
    const base = target.startsWith('/') ? target : path.posix.join(current, target);
    return resolveInsideRootfs(rootfs, path.posix.join('/', base, rest), hops + 1, lstats);
  }
  return current;
}

function resolvePath(requested: string, what: string): PathFact {
  try {
    const resolved = realpathSync.native(requested);
    const stat = statSync(resolved);
    return { requested, resolved, kind: stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other' };
  } catch (err) {
    throw new SysruncError(`${what} ${requested}: ${describeFsError(err)}`);
  }
}

// Overlay options that change how existing layer content is read or what the upper and work dirs
// already hold (a work dir used with volatile is refused by a mount without it, as podman's --rm
// makes); the rest are left at defaults. index stays off: see the overlay-mount host action.
// Newer kernels show volatile as fsync=volatile.
const CARRIED_OVERLAY_OPTIONS = ['redirect_dir', 'metacopy', 'xino', 'volatile', 'fsync', 'uuid'];

function ownedBy(dir: string, owner: { readonly uid: number; readonly gid: number }): boolean {
  const st = statSync(dir);
  return st.uid === owner.uid && st.gid === owner.gid;
}

function overlayAt(mountpoint: string, mountInfo: () => readonly MountInfo[]): OverlayFact | undefined {
  if (!isMountPoint(mountpoint)) return undefined;
  let overlay;
  try {
    // dockerd passes long layer lists relative to its overlay2 dir, which holds <id>/merged.
    // From the mount itself where the kernel can tell (statmount), else from mountinfo.
    overlay = topOverlayAt(mountpoint, { baseDir: path.dirname(path.dirname(mountpoint)), mountInfo });
  } catch (err) {
    if (/not an overlay mount/.test((err as Error).message)) return undefined;
    throw new SysruncError(`root.path ${mountpoint}: ${(err as Error).message}`);
  }
  if (overlay.datadirs.length > 0 || overlay.options.userxattr !== undefined) {
    throw new SysruncError(`root.path ${mountpoint}: overlay with data-only layers or userxattr is not supported`);
  }
  const real = (p: string) => resolvePath(p, 'root.path overlay layer').resolved;
  const options: Record<string, string> = { index: 'off' };
  for (const key of CARRIED_OVERLAY_OPTIONS) {
    const value = overlay.options[key];
    if (typeof value === 'string') options[key] = value;
    else if (value === true) options[key] = ''; // a flag (volatile)
  }
  return {
    lowerdirs: overlay.lowerdirs.map(real),
    upperdir: overlay.upperdir === undefined ? undefined : real(overlay.upperdir),
    workdir: overlay.workdir === undefined ? undefined : real(overlay.workdir),
    options,
  };
}
