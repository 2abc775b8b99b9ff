import type { Spec } from '../oci/spec.ts';
import type { HostAction } from '../manager-api/v1.ts';
import type { Plan, Transform, TransformOutput } from './types.ts';
import { bundlePaths } from './bundle-paths.ts';
import { rootfsPropagation } from './rootfs-propagation.ts';
import { userNamespace } from './user-namespace.ts';
import { podNetwork } from './pod-network.ts';
import { rootfsOwnership } from './rootfs-ownership.ts';
import { bindMountOwnership } from './bind-mount-ownership.ts';
import { systemNamespaces } from './system-namespaces.ts';
import { systemCapabilities } from './system-capabilities.ts';
import { systemMounts } from './system-mounts.ts';
import { systemSecurity } from './system-security.ts';
import { systemdInit } from './systemd.ts';
import { cgroupDelegation } from './cgroup-delegation.ts';
import { storeVolumes } from './store-volumes.ts';
import { lxcfsView } from './lxcfs-view.ts';
import { lxcfsCpuset } from './lxcfs-cpuset.ts';
import { lxcfsNested } from './lxcfs-nested.ts';
import { sandboxMountPoints } from './pod-sandbox.ts';

/**
 * The ordered list of transforms create and run apply; later ones see the earlier ones' output.
 * The bind-mount-ownership transform runs before any transform that adds mounts: its facts are
 * indexed by position in the caller's mounts.
 */
export const TRANSFORMS: readonly Transform[] = [
  bundlePaths,
  rootfsPropagation,
  // Before user-namespace: a sandbox that gets its own network namespace may mount sysfs.
  podNetwork,
  userNamespace,
  rootfsOwnership,
  bindMountOwnership,
  systemNamespaces,
  systemCapabilities,
  systemMounts,
  // After system-mounts: its binds go over the /proc and /sys mounted before them.
  lxcfsView,
  lxcfsCpuset,
  systemSecurity,
  // After system-security: mount's allow rule it adds gives way to the notification.
  lxcfsNested,
  systemdInit,
  cgroupDelegation,
  // Already owned by the container's root on disk: must come after bind-mount-ownership.
  storeVolumes,
  // Last: a sandbox's mount points are every mount's the transforms above added.
  sandboxMountPoints,
];

export function runPipeline(spec: Spec, plan: Plan, transforms: readonly Transform[] = TRANSFORMS): TransformOutput {
  let current = structuredClone(spec);
  const actions: HostAction[] = [];
  for (const transform of transforms) {
    const out = transform.apply(current, plan);
    current = out.spec;
    actions.push(...out.actions);
  }
  return { spec: current, actions };
}
