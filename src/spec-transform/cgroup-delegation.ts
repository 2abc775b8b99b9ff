import type { Transform } from './types.ts';

/**
 * Delegates the container's cgroups to its root, so an inner dockerd or systemd can make cgroups:
 * a createRuntime hook (after runc made the cgroups, before the container runs) chowns the
 * container's cgroup directories and their files to the container's root, as systemd's Delegate=.
 */
export const cgroupDelegation: Transform = {
  name: 'cgroup-delegation',
  apply(spec, plan) {
    if (!plan.settings.systemContainer) return { spec, actions: [] };
    const uid = plan.userns.uidMappings.find((m) => m.containerID === 0)?.hostID;
    const gid = plan.userns.gidMappings.find((m) => m.containerID === 0)?.hostID;
    if (uid === undefined || gid === undefined) return { spec, actions: [] };
    const hook = { path: plan.hookBinary, args: ['sysrunc-delegate-cgroups', String(uid), String(gid)] };
    const hooks = { ...spec.hooks, createRuntime: [...(spec.hooks?.createRuntime ?? []), hook] };
    return { spec: { ...spec, hooks }, actions: [] };
  },
};
