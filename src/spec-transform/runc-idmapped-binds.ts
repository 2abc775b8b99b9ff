import type { Mount } from '../oci/spec.ts';
import type { PathFact, Plan } from './types.ts';

/**
 * On a runc whose features say it makes idmapped mounts itself (runc 1.2+,
 * linux.mountExtensions.idmap), a bind the manager chose to idmap is handed to runc as an OCI 1.1+
 * idmapped mount: the resolved source, the container's own mappings (host root's files appear owned
 * by container root, as with sysrunc's own idmapped mount), "ridmap" for an rbind and "idmap" for a
 * bind. No host action, nothing of sysrunc's to undo at delete.
 *
 * A read-only bind stays sysrunc's: runc sets its read-only flag inside the container's user
 * namespace, where container root could clear it again, and sysrunc's own mount sets it on the
 * host's side, where it is locked. runc 1.1 (no such feature): sysrunc's own, as before.
 */
export function runcMakesIdmappedBind(mount: Mount, plan: Plan): boolean {
  return plan.runtime?.idmapMounts === true && !(mount.options ?? []).includes('ro');
}

/** The bind as runc's own idmapped mount (see runcMakesIdmappedBind). */
export function runcIdmappedBind(mount: Mount, source: PathFact, plan: Plan): Mount {
  const options = mount.options ?? [];
  const idmap = options.includes('rbind') ? 'ridmap' : 'idmap';
  return {
    ...mount,
    source: source.resolved,
    options: [...options.filter((o) => o !== 'idmap' && o !== 'ridmap'), idmap],
    uidMappings: plan.userns.uidMappings.map((m) => ({ ...m })),
    gidMappings: plan.userns.gidMappings.map((m) => ({ ...m })),
  };
}
