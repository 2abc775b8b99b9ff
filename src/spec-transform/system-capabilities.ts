import type { Capabilities, Process, Spec } from '../oci/spec.ts';
import type { ContainerSettings } from './settings.ts';
import type { Transform } from './types.ts';
import { engineOf, removedFromDefault, type Engine } from './engine-capabilities.ts';

/**
 * Root in a system container gets every capability (they act only within its user namespace); a
 * non-root process gets them in its bounding set only, so it can still gain them by exec'ing a
 * setuid/file-capability binary, as on a host. "Every" is what the host lets runc grant.
 *
 * Only for a container that asked for nothing special: one whose capabilities include its engine's
 * default set (engine-capabilities.ts). A caller that removed any of those (`--cap-drop NET_RAW`,
 * a pod's `drop: [ALL]`) is hardening the workload: it gets exactly the capabilities it listed, as
 * under runc, and sysrunc adds none. (`--cap-add ALL --cap-drop X` is a system container without X.)
 */
export const systemCapabilities: Transform = {
  name: 'system-capabilities',
  apply(spec, plan) {
    if (!grantsSystemCapabilities(spec, plan.engine ?? engineOf(spec, plan.containerId), plan.settings)) return { spec, actions: [] };
    const process = systemProcess(spec.process ?? { cwd: '/' }, plan.hostCapabilities);
    return { spec: { ...spec, process }, actions: [] };
  },
};

/** Whether the container's processes (its init and what is exec'd into it) get the system grant. */
export function grantsSystemCapabilities(spec: Spec, engine: Engine, settings: ContainerSettings): boolean {
  if (!settings.systemContainer || settings.capabilities === 'caller') return false;
  return removedFromDefault(spec, engine).length === 0;
}

/** The capabilities a process of a system container gets; also applied to `exec`'d processes. */
export function systemProcess(process: Process, hostCapabilities: readonly string[]): Process {
  const all = [...hostCapabilities];
  const caller: Capabilities = process.capabilities ?? {};
  const isRoot = (process.user?.uid ?? 0) === 0;
  const capabilities: Capabilities = isRoot
    ? { ...caller, bounding: all, effective: all, permitted: all }
    : { ...caller, bounding: all };
  return { ...process, capabilities };
}
