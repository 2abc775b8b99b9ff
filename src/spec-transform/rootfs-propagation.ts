import { RECURSIVE_PROPAGATION } from '../oci/runc-accepted.ts';
import type { Transform } from './types.ts';

/**
 * runc's recursive rootfsPropagation ("rshared", "rslave": containerd's CRI writes them for
 * Bidirectional and HostToContainer volumes) is written as the schema's value ("shared",
 * "slave"). What the recursion adds under runc is kept otherwise: the volumes that asked for
 * propagation carry "rshared"/"rslave" in their own mount options, which runc applies to each, and
 * a sysrunc container's mount namespace belongs to its user namespace, so the kernel has already
 * turned every shared mount it copied from the host into a slave (nothing propagates to the host).
 */
export const rootfsPropagation: Transform = {
  name: 'rootfs-propagation',
  apply(spec) {
    const value = spec.linux?.rootfsPropagation as string | undefined;
    const schemaForm = value === undefined || !Object.hasOwn(RECURSIVE_PROPAGATION, value) ? undefined : RECURSIVE_PROPAGATION[value];
    if (schemaForm === undefined) return { spec, actions: [] };
    return { spec: { ...spec, linux: { ...spec.linux, rootfsPropagation: schemaForm } }, actions: [] };
  },
};
