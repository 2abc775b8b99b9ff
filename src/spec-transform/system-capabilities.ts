import type { Capabilities, Process } from '../oci/spec.ts';
import type { Transform } from './types.ts';

/**
 * Root in a system container gets every capability (they act only within its user namespace); a
 * non-root process gets them in its bounding set only, so it can still gain them by exec'ing a
 * setuid/file-capability binary, as on a host. "Every" is what the host lets runc grant.
 */
export const systemCapabilities: Transform = {
  name: 'system-capabilities',
  apply(spec, plan) {
    if (!plan.settings.systemContainer || plan.settings.capabilities === 'caller') return { spec, actions: [] };
    const process = systemProcess(spec.process ?? { cwd: '/' }, plan.hostCapabilities);
    return { spec: { ...spec, process }, actions: [] };
  },
};

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
