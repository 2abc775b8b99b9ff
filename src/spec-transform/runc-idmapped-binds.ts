import type { Mount } from '../oci/spec.ts';
import type { PathFact, Plan } from './types.ts';

/**
 * On a runc whose features say it makes idmapped mounts itself (runc 1.2+,
 * linux.mountExtensions.idmap), a bind of the engine's own file for this container (Docker's
 * hosts, hostname, resolv.conf; CRI's sandbox files) that the manager chose to idmap is handed to
 * runc as an OCI 1.1+ idmapped mount: the resolved source, the container's own mappings (host
 * root's files appear owned by container root, as with sysrunc's own idmapped mount), "ridmap" for
 * an rbind and "idmap" for a bind. No host action, nothing of sysrunc's to undo at delete.
 *
 * Everything else stays sysrunc's own mount, made on the host's side:
 * - a read-only bind: runc sets its read-only flag inside the container's user namespace, where
 *   container root could clear it again; sysrunc sets it on the host's side, where it is locked;
 * - any other source (a `-v` bind with bind-ownership host-root, a pod's volume): sysrunc pins it
 *   once without following a symlink in any component (host/pinned-path.ts), runc resolves the
 *   path again as it mounts; the engine's own files sit in directories only host root writes.
 * runc 1.1 (no such feature): sysrunc's own, as before.
 */
export function runcMakesIdmappedBind(mount: Mount, engineFile: boolean, plan: Plan): boolean {
  return plan.runtime?.idmapMounts === true && engineFile && !(mount.options ?? []).includes('ro');
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
