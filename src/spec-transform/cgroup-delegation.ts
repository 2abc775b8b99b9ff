import path from 'node:path';
import type { Transform, Plan } from './types.ts';
import type { Spec } from '../oci/spec.ts';

/**
 * Delegates the container's cgroups to its root, so an inner dockerd or systemd can make cgroups
 * (as systemd's Delegate=): the container's own cgroup directory in every hierarchy, and the
 * files that let it manage children (never the limit files its caller set), owned by its root.
 *
 * With runc's cgroupfs driver the directories are known before runc runs (runc's cgroupsPath
 * rule, applied to the cgroups of the process that becomes runc), so the manager makes and hands
 * them over first (cgroup-delegate): no process per container. With the systemd driver, systemd
 * makes them during runc's create, so a createRuntime hook hands them over then.
 */
export const cgroupDelegation: Transform = {
  name: 'cgroup-delegation',
  apply(spec, plan) {
    if (!plan.settings.systemContainer) return { spec, actions: [] };
    const uid = plan.userns.uidMappings.find((m) => m.containerID === 0)?.hostID;
    const gid = plan.userns.gidMappings.find((m) => m.containerID === 0)?.hostID;
    if (uid === undefined || gid === undefined) return { spec, actions: [] };
    const dirs = cgroupfsDirs(spec, plan);
    if (dirs !== undefined) return { spec, actions: [{ kind: 'cgroup-delegate', dirs }] };
    const hook = { path: plan.hookBinary, args: ['sysrunc-delegate-cgroups', String(uid), String(gid)] };
    const hooks = { ...spec.hooks, createRuntime: [...(spec.hooks?.createRuntime ?? []), hook] };
    return { spec: { ...spec, hooks }, actions: [] };
  },
};

/**
 * The container's cgroup directory in each hierarchy, as runc's cgroupfs driver will make it: an
 * absolute cgroupsPath below the hierarchy's root, a relative one (default: the container id)
 * below the cgroup runc itself is in. Undefined where that cannot be known beforehand.
 */
function cgroupfsDirs(spec: Spec, plan: Plan): string[] | undefined {
  const cgroupsPath = spec.linux?.cgroupsPath ?? '';
  // "slice:prefix:name" is the systemd driver's form; runc --systemd-cgroup uses it too.
  if (plan.cgroups.systemdDriver || cgroupsPath.includes(':') || plan.cgroups.hierarchies.length === 0) return undefined;
  const inner = cgroupsPath === '' ? plan.containerId : cgroupsPath;
  const dirs: string[] = [];
  for (const h of plan.cgroups.hierarchies) {
    const cgroup = path.posix.isAbsolute(inner) ? path.posix.normalize(inner) : path.posix.join(h.path, inner);
    const below = path.posix.relative(h.mountRoot, cgroup);
    // A cgroup outside what is mounted here, or the hierarchy's own root: leave it to runc and the hook.
    if (below === '' || below.startsWith('..')) return undefined;
    const dir = path.join(h.mountpoint, below);
    if (!dirs.includes(dir)) dirs.push(dir);
  }
  return dirs;
}
