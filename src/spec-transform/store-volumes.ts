import type { Transform } from './types.ts';

/**
 * Mounts the store volumes (/var/lib/docker and friends) the manager made: host directories owned by
 * the container's root, so an inner dockerd or containerd never puts overlayfs on overlayfs. They
 * are appended after every caller mount, parents first; the manager left out paths a caller mount
 * already covers.
 */
export const storeVolumes: Transform = {
  name: 'store-volumes',
  apply(spec, plan) {
    if (plan.volumeMounts.length === 0) return { spec, actions: [] };
    const mounts = [...(spec.mounts ?? []), ...plan.volumeMounts.map((m) => ({ ...m, options: [...m.options] }))];
    return { spec: { ...spec, mounts }, actions: [] };
  },
};
