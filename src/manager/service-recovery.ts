// Recovery: the manager's records brought in line with the host (at start-up), and the release of
// containers that went without the manager being told (the periodic sweep, and before a register).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readdirIfExists } from '../common/read-dir.ts';
import { mountsUnder, unmount } from '../host/mount.ts';
import { LXCFS_DIR_NAME } from './lxcfs/layout.ts';
import { processIsAlive, runcKnowsContainer } from './liveness.ts';
import { rangeKeyOf, type ContainerRecord } from './registry.ts';
import { removeUnmountedTree } from './run-dirs.ts';
import { MOUNT_LISTENER_SOCKETS_DIR_NAME } from '../spec-transform/lxcfs-nested.ts';
import { RUN_DIRS, type ServiceOptions } from './service-options.ts';
import { MOUNT_NS_LOCK_FILE } from '../host/mount-ns-lock.ts';

/** Releases a container's record (service.ts releaseOnce): with `keep`, as a stop. */
export type ReleaseGone = (record: ContainerRecord, how: { keep: boolean }) => Promise<void>;

/**
 * Brings records in line with reality: containers that no runc root knows and no create is
 * working on are released; allocations and mounts nobody records are dropped.
 */
export async function reconcileHost(o: ServiceOptions, release: ReleaseGone): Promise<{ released: string[] }> {
  await o.volumes.recover();
  const released = await sweepGone(o, release);
  const known = new Set(o.registry.all().map((r) => r.id));
  for (const leftover of o.executor.reconcile(known)) o.log.warn(leftover);
  for (const { id } of o.volumes.list()) {
    if (known.has(id)) continue;
    await o.volumes.destroyVolumes(id);
    o.log.warn({ id }, 'destroyed store volumes with no container record');
  }
  const inUse = new Set(o.registry.all().flatMap((r) => rangeKeyOf(r) ?? []));
  for (const allocation of o.allocator.list()) {
    if (known.has(allocation.id) || inUse.has(allocation.id)) continue;
    o.allocator.free(allocation.id);
    o.log.warn({ id: allocation.id }, 'freed an allocation with no container record');
  }
  const runDirs = new Set(o.registry.all().map((r) => r.runDir));
  // lxcfs's mounts are no container's: running containers read their /proc through them.
  const lxcfsDir = path.join(o.runBase, LXCFS_DIR_NAME);
  const owned = (p: string) => [...runDirs, lxcfsDir].some((dir) => p === dir || p.startsWith(`${dir}/`));
  for (const mount of mountsUnder(o.runBase).reverse()) {
    if (owned(mount)) continue;
    unmount(mount, { detach: true });
    o.log.warn({ mount }, 'unmounted a mount with no container record');
  }
  for (const dir of runDirCandidates(o)) {
    if (runDirs.has(dir)) continue;
    try {
      removeUnmountedTree(dir);
    } catch (err) {
      o.log.error({ dir, err: (err as Error).message }, 'could not remove a run dir with no container record');
    }
  }
  for (const id of o.bundles.ids()) if (!known.has(id)) o.bundles.remove(id);
  return { released };
}

/** Per-container dirs under the run base: containers/<id>, and <id> as sysrunc before 0.2 made them. */
function runDirCandidates(o: ServiceOptions): string[] {
  const layout = new Set([RUN_DIRS, LXCFS_DIR_NAME, MOUNT_LISTENER_SOCKETS_DIR_NAME, MOUNT_NS_LOCK_FILE, path.basename(o.bundles.bundlesDir), path.basename(o.bundles.hintsDir)]);
  const legacy = readdirIfExists(o.runBase).filter((n) => !layout.has(n) && !n.endsWith('.sock') && !n.startsWith('.'));
  return [...readdirIfExists(path.join(o.runBase, RUN_DIRS)).map((n) => path.join(o.runBase, RUN_DIRS, n)), ...legacy.map((n) => path.join(o.runBase, n))];
}

/**
 * Releases what belongs to containers that are gone: records no runc root knows and no create is
 * working on (as a stop), and stopped containers whose rootfs was removed (docker rm), with their
 * volumes and clone.
 */
export async function sweepGone(o: ServiceOptions, release: ReleaseGone, scope: 'all' | 'unwatched' = 'all'): Promise<string[]> {
  const released: string[] = [];
  for (const record of o.registry.all()) {
    if (scope === 'unwatched' && o.tracker?.covers?.(record.id) === true) continue;
    if (record.stopped === true) {
      // dockerd removes the merged dir at every stop; the layer's upper dir goes only with `docker rm`.
      const layer = record.volumes?.upperdir ?? record.clone?.upperdir ?? record.volumes?.rootfs;
      if (layer !== undefined && existsSync(layer)) continue;
    } else {
      if (runcKnowsContainer(record.runtimeRoot, record.id)) continue;
      if (processIsAlive(record.shimPid, record.shimStartTime)) continue;
    }
    try {
      // A record runc no longer knows is released as a stop, never as a removal: the sweep may run
      // between a delete's `runc delete` and its own release call, and a stopped container (or a
      // reboot) must keep its store volumes and clone until its rootfs is really gone.
      await release(record, { keep: record.stopped !== true });
      released.push(record.id);
      o.log.warn({ id: record.id, stopped: record.stopped === true }, 'released a container that no longer exists');
    } catch (err) {
      o.log.error({ id: record.id, err: (err as Error).message }, 'could not release an orphaned container');
    }
  }
  return released;
}
