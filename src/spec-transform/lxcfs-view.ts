import type { Mount } from '../oci/spec.ts';
import type { LxcfsFact, Transform } from './types.ts';

export type { LxcfsFact };

// Read-only in the container, and a slave of the host's view: a restarted lxcfs's files, stacked
// on the host's side, propagate into it ("rslave" keeps that even under a private root propagation
// set by runc for the other mounts).
const OPTIONS = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec', 'rslave'];

/**
 * The container's own /proc figures (memory limit, CPU quota and cpuset, its uptime and load) from
 * lxcfs: a read-only bind of each lxcfs file over the kernel's. A mount the caller put at one of
 * those paths, or over /proc or /sys as a whole from the host, wins.
 */
export const lxcfsView: Transform = {
  name: 'lxcfs-view',
  apply(spec, plan) {
    if (!plan.settings.systemContainer || !plan.settings.lxcfs || plan.lxcfs === undefined) return { spec, actions: [] };
    const callers = spec.mounts ?? [];
    const added: Mount[] = plan.lxcfs.files
      .filter((f) => !callers.some((m) => m.destination === f.destination || (m.type === 'bind' && f.destination.startsWith(`${m.destination}/`))))
      .map((f) => ({ destination: f.destination, type: 'bind', source: f.source, options: [...OPTIONS] }));
    if (added.length === 0) return { spec, actions: [] };
    return { spec: { ...spec, mounts: [...callers, ...added] }, actions: [] };
  },
};
