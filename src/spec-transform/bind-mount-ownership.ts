import path from 'node:path';
import type { HostAction } from '../manager-api/v1.ts';
import type { Mount, Spec } from '../oci/spec.ts';
import type { Transform } from './types.ts';
import { runcIdmappedBind, runcMakesIdmappedBind } from './runc-idmapped-binds.ts';

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

const RECEIVING_PROPAGATION = ['rshared', 'shared', 'rslave', 'slave'];

/** Whether a bind asks for mount propagation from the host (runc applies these options to it). */
export function receivesPropagation(mount: Mount): boolean {
  return (mount.options ?? []).some((o) => RECEIVING_PROPAGATION.includes(o));
}

export function isReadOnlyMount(mount: Mount): boolean {
  return (mount.options ?? []).includes('ro');
}

// containerd's CRI names a pod's files after its sandbox: /var/lib/containerd/...sandboxes/<id>/hosts.
const CRI_SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';

/**
 * Whether a bind source is a file or dir the container engine made for this container alone
 * (Docker's /var/lib/docker/containers/<id>/hosts, resolv.conf, hostname, shm; containerd CRI's
 * sandbox files): a path with the container's id, or its pod sandbox's, as a directory name. These
 * keep host-root ownership inside, as under runc, so that root in the container may edit them.
 */
export function isEngineFile(resolvedSource: string, containerId: string, spec: Spec): boolean {
  const ids = new Set([containerId, spec.annotations?.[CRI_SANDBOX_ID]].filter((id): id is string => id !== undefined && id.length >= 12));
  return path.dirname(resolvedSource).split('/').some((part) => ids.has(part));
}

/**
 * Mounts each host bind source as the manager decided: an idmapped view in which host root is
 * container root (engine files such as Docker's /etc/hosts, and `-v` binds of a container set to
 * bind-ownership host-root), or the source shifted in place (chown-tree), or, the default for `-v`
 * binds, a plain bind in which the container's ids are its own range's. Either way the mount is made
 * on the host's side first, read-only there when the config says ro: a flag the host's user
 * namespace sets is locked, so container root cannot remount the bind read-write.
 */
export const bindMountOwnership: Transform = {
  name: 'bind-mount-ownership',
  apply(spec, plan) {
    const actions: HostAction[] = [];
    const shifted = new Set<string>();
    const mounts = (spec.mounts ?? []).map((mount, index) => {
      const fact = plan.bindSources.get(index);
      if (fact === undefined) return mount;
      const target = path.join(plan.runDir, 'mounts', String(index));
      const recursive = (mount.options ?? []).includes('rbind');
      const readOnly = isReadOnlyMount(mount);
      switch (plan.ownership.bindSources.get(fact.resolved) ?? 'none') {
        case 'idmap':
          if (runcMakesIdmappedBind(mount, isEngineFile(fact.resolved, plan.containerId, spec), plan)) return runcIdmappedBind(mount, fact, plan);
          actions.push({ kind: 'idmapped-mount', source: fact.resolved, target, recursive, readOnly });
          return { ...mount, source: target };
        case 'chown':
          if (!shifted.has(fact.resolved)) actions.push({ kind: 'chown-tree', path: fact.resolved });
          shifted.add(fact.resolved);
          return mount;
        case 'none':
          // A writable volume that asks to receive the host's later mounts (a pod's HostToContainer
          // or Bidirectional volume) is bound by runc itself: a mount the manager made on the host's
          // side first would be a copy outside the source's peer group, and receive nothing.
          if (!readOnly && receivesPropagation(mount)) return { ...mount, source: fact.resolved };
          actions.push({ kind: 'bind-mount', source: fact.resolved, target, recursive, readOnly });
          return { ...mount, source: target };
      }
    });
    return { spec: spec.mounts === undefined ? spec : { ...spec, mounts }, actions };
  },
};
