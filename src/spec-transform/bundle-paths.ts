import path from 'node:path';
import type { Mount } from '../oci/spec.ts';
import type { Transform } from './types.ts';
import { isBindMount } from './bind-mount-ownership.ts';

/**
 * runc runs the transformed config from a bundle of the manager's own, not the caller's, so every
 * path runc would resolve against the bundle is made absolute against the caller's: root.path,
 * and the sources of bind mounts (runc joins a relative one to the bundle directory). Bind mounts
 * also get the nosuid/nodev/noexec flags of their source's host mount, which runc would otherwise
 * try to clear from inside the user namespace.
 */
export const bundlePaths: Transform = {
  name: 'bundle-paths',
  apply(spec, plan) {
    const absolute = (p: string) => path.resolve(plan.bundleDir, p);
    const root = spec.root === undefined ? undefined : { ...spec.root, path: absolute(spec.root.path) };
    const mounts = spec.mounts?.map((m: Mount, index) => {
      const located = isBindMount(m) && m.source !== undefined && !path.isAbsolute(m.source) ? { ...m, source: absolute(m.source) } : m;
      // Flags of the source's host mount that a user namespace cannot clear (gather-facts.ts).
      const locked = plan.lockedBindFlags.get(index);
      return locked === undefined ? located : { ...located, options: [...(located.options ?? []), ...locked] };
    });
    return { spec: { ...spec, ...(root === undefined ? {} : { root }), ...(mounts === undefined ? {} : { mounts }) }, actions: [] };
  },
};
