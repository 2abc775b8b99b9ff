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

/** Whether a bind source gets an idmapped view (decided on the resolved host path). */
export function wantsIdmappedView(mount: Mount, resolvedSource: string): boolean {
  if (!isBindMount(mount)) return false;
  if ((mount.options ?? []).includes('idmap') || (mount.options ?? []).includes('ridmap')) return false;
  return !KERNEL_TREES.some((tree) => resolvedSource === tree || resolvedSource.startsWith(`${tree}/`));
}

/**
 * Replaces each host bind source with an idmapped view of it, so host-root-owned files (Docker's
 * /etc/hosts, `-v` volumes) are root-owned inside and writes by container root land as host root.
 */
export const idmappedBindMounts: Transform = {
  name: 'idmapped-bind-mounts',
  apply(spec, plan) {
    const actions: HostAction[] = [];
    const mounts = (spec.mounts ?? []).map((mount, index) => {
      const fact = plan.bindSources.get(index);
      if (fact === undefined) return mount;
      const target = path.join(plan.runDir, 'mounts', String(index));
      const recursive = (mount.options ?? []).includes('rbind');
      actions.push({ kind: 'idmapped-mount', source: fact.resolved, target, recursive });
      return { ...mount, source: target };
    });
    return { spec: spec.mounts === undefined ? spec : { ...spec, mounts }, actions };
  },
};
