// The manager's read-only answers: its records (`list`) and everything it holds (`status`).
import type { Result } from '../manager-api/v1.ts';
import { treeBytes } from '../common/tree-bytes.ts';
import type { ServiceOptions } from './service-options.ts';

/** The manager's container records, as its `list` answers them. */
export function listContainers(o: ServiceOptions): Result<'list'> {
  return {
    containers: o.registry.all().map((r) => ({
      id: r.id,
      runtimeRoot: r.runtimeRoot,
      bundle: r.bundle,
      uidMappings: r.uidMappings,
      gidMappings: r.gidMappings,
      actions: r.actions,
    })),
  };
}

/** Allocations, records, volumes and lxcfs, as the manager's `status` answers them. */
export function managerStatus(o: ServiceOptions): Result<'status'> {
  const state = o.allocator.state();
  return {
    mode: state.mode,
    ranges: o.allocator.pool(),
    allocations: state.allocations,
    containers: o.registry.all().map((r) => ({
      id: r.id,
      bundle: r.bundle,
      uidMappings: r.uidMappings,
      ...(r.ownership !== undefined ? { ownership: r.ownership } : {}),
      stopped: r.stopped === true,
      actions: r.actions,
    })),
    volumes: o.volumes.list().flatMap((c) =>
      c.volumes.map((v) => ({ id: c.id, mountpoint: v.mountpoint, hostDir: v.hostDir, mode: v.layer === undefined ? ('copy' as const) : ('in-layer' as const), bytes: treeBytes(v.hostDir) })),
    ),
    ...(o.lxcfs === undefined ? {} : { lxcfs: o.lxcfs.status() }),
  };
}
