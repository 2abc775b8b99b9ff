// A Kubernetes pod's sandbox (its "pause" container) runs one process that reads one binary and
// writes nothing, and no one ever looks inside its rootfs. So its rootfs is not shifted to the
// container's root: it stays the engine's (bound into the run dir, where runc reaches it), which
// saves the overlay swap, and with it a sync of the file system under the container's layers at
// create and again at exit (bench/README.md, round 9). Files of the image then belong to an owner
// outside the container's user namespace; the pause binary only needs to be readable and
// executable by others, as images make it. What runc's init would have made in that rootfs as the
// container's root, which it no longer owns (mount points, the working directory), the manager
// makes beforehand as the host's root: the `mount-points` host action.
import path from 'node:path';
import type { HostAction } from '../manager-api/v1.ts';
import type { Mount, Spec } from '../oci/spec.ts';
import { isBindMount } from './bind-mount-ownership.ts';
import type { Plan, Transform } from './types.ts';

// What containerd's CRI plugin and CRI-O put on a pod's sandbox container.
const SANDBOX_ANNOTATIONS: Readonly<Record<string, string>> = {
  'io.kubernetes.cri.container-type': 'sandbox',
  'io.kubernetes.cri-o.ContainerType': 'sandbox',
};

export function isPodSandbox(spec: Spec): boolean {
  const annotations = spec.annotations ?? {};
  return Object.entries(SANDBOX_ANNOTATIONS).some(([key, value]) => annotations[key] === value);
}

/** The sandbox's rootfs stays as the engine made it (rootfs-ownership.ts binds it into the run dir). */
export function keepsEngineRootfs(spec: Spec, plan: Plan): boolean {
  return isPodSandbox(spec) && plan.rootfs.shiftedByEngine !== true;
}

type MountPoint = Extract<HostAction, { kind: 'mount-points' }>['points'][number];

/**
 * The mount points runc's init looks for in the rootfs itself: each destination not below an
 * earlier mount's (a /dev/pts goes into the /dev tmpfs mounted before it, where the container's
 * root may create it), and the working directory. A bind's source decides file or directory at
 * apply time, as runc decides it.
 */
export function rootfsMountPoints(mounts: readonly Mount[], cwd: string | undefined): MountPoint[] {
  const points: MountPoint[] = [];
  const earlier: string[] = [];
  for (const m of mounts) {
    const destination = path.posix.resolve('/', m.destination);
    // A destination already mounted on (the same one twice included) needs no point of its own.
    const below = destination === '/' || atOrBelowAny(destination, earlier);
    earlier.push(destination);
    if (below) continue;
    points.push(isBindMount(m) && m.source !== undefined && path.isAbsolute(m.source) ? { destination, bindSource: m.source } : { destination });
  }
  const dir = cwd === undefined ? '/' : path.posix.resolve('/', cwd);
  if (dir !== '/' && !atOrBelowAny(dir, earlier)) points.push({ destination: dir });
  return points;
}

/** Whether p (normalized, absolute) is one of dirs or below one of them. */
function atOrBelowAny(p: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => p === d || p.startsWith(d === '/' ? d : `${d}/`));
}

/** Last in the pipeline: it needs every mount the transforms before it added. */
export const sandboxMountPoints: Transform = {
  name: 'sandbox-mount-points',
  apply(spec, plan) {
    if (!keepsEngineRootfs(spec, plan)) return { spec, actions: [] };
    const points = rootfsMountPoints(spec.mounts ?? [], spec.process?.cwd);
    if (points.length === 0) return { spec, actions: [] };
    return { spec, actions: [{ kind: 'mount-points', root: plan.rootfs.resolved, points }] };
  },
};
