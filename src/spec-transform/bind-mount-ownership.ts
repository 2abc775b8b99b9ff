import path from 'node:path';
import type { HostAction } from '../manager-api/v1.ts';
import type { Mount } from '../oci/spec.ts';
import type { Transform } from './types.ts';

/** A bind mount: type "bind", or runc's equivalent of a typeless mount with a bind option. */
export function isBindMount(mount: Mount): boolean {
  return mount.type === 'bind' || (mount.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

// Kernel and device trees cannot be idmapped and hold nothing the user namespace should re-own.
const KERNEL_TREES = ['/proc', '/sys', '/dev'];

/** Whether a bind source needs container-root ownership (decided on the resolved host path). */
export function wantsOwnership(mount: Mount, resolvedSource: string): boolean {
  if (!isBindMount(mount)) return false;
  if ((mount.options ?? []).includes('idmap') || (mount.options ?? []).includes('ridmap')) return false;
  return !KERNEL_TREES.some((tree) => resolvedSource === tree || resolvedSource.startsWith(`${tree}/`));
}

export function isReadOnlyMount(mount: Mount): boolean {
  return (mount.options ?? []).includes('ro');
}

/**
 * Gives each host bind source container-root ownership inside, as the manager decided per source:
 * an idmapped view replaces the source (Docker's /etc/hosts, `-v` volumes are root-owned inside and
 * writes by container root land as host root), or the source is shifted in place (chown-tree) and
 * mounted as it is, or (read-only, not idmappable) it is left alone.
 */
export const bindMountOwnership: Transform = {
  name: 'bind-mount-ownership',
  apply(spec, plan) {
    const actions: HostAction[] = [];
    const shifted = new Set<string>();
    const mounts = (spec.mounts ?? []).map((mount, index) => {
      const fact = plan.bindSources.get(index);
      if (fact === undefined) return mount;
      switch (plan.ownership.bindSources.get(fact.resolved) ?? 'none') {
        case 'idmap': {
          const target = path.join(plan.runDir, 'mounts', String(index));
          const recursive = (mount.options ?? []).includes('rbind');
          actions.push({ kind: 'idmapped-mount', source: fact.resolved, target, recursive });
          return { ...mount, source: target };
        }
        case 'chown':
          if (!shifted.has(fact.resolved)) actions.push({ kind: 'chown-tree', path: fact.resolved });
          shifted.add(fact.resolved);
          return mount;
        case 'none':
          return mount;
      }
    });
    return { spec: spec.mounts === undefined ? spec : { ...spec, mounts }, actions };
  },
};
