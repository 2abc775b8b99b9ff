// A container's release, in two parts. What the engine depends on once a delete returns comes
// first: the engine's overlay back at its path (sysrunc's gone from over the upper dir), ownership
// changed on disk reverted, store volumes synced out and a kept record stopped. What nothing
// outside sysrunc looks at can follow (`RunDirRest`): the idmapped and plain binds below the
// container's own run dir, the run dir itself, the cgroup dirs, the prepared bundle and hint, the
// user-namespace fds, the range and the record. The record keeps every action until the rest is
// done, so a manager killed in between undoes them all again at its restart (each undo is
// idempotent: undoing what is already undone does nothing).
import type { HostAction } from '../manager-api/v1.ts';
import { restoreLegacyBundleConfig } from '../oci/bundle.ts';
import { faultPoint } from '../testing/fault.ts';
import { undoMountTarget } from './host-executor.ts';
import { rangeKeyOf, type ContainerRecord } from './registry.ts';
import { removeRunDir } from './run-dirs.ts';
import { ServiceError } from './service-error.ts';
import type { ServiceOptions } from './service-options.ts';
import { StepTimings } from './step-timings.ts';

/**
 * Actions the engine never sees undone: mounts whose targets are in the container's run dir, where
 * no engine ever looks, the container's cgroup dirs (runc's delete removed them already; a create
 * of the same cgroup path waits in the queue behind this part, so none of its dirs goes), and a
 * sandbox's mount points (nothing to undo). A release undoes them after its answer; an exit
 * hand-back leaves them to the delete (exit-hand-back.ts).
 */
export const ENGINE_UNSEEN: ReadonlySet<HostAction['kind']> = new Set(['idmapped-mount', 'bind-mount', 'cgroup-delegate', 'mount-points']);

/** Actions whose mount point an engine-side undo unmounts and leaves (empty) for the run dir's part. */
const LEFT_TARGET: ReadonlySet<HostAction['kind']> = new Set(['overlay-mount', 'rootfs-clone']);

/** The part of a release that may follow the answer: everything under the run dir, and the bookkeeping. */
export type RunDirRest = () => Promise<void>;

export interface ReleaseHow {
  /** As a stop: store volumes or a clone that outlive the run stay, with the range and a stopped record. */
  readonly keep: boolean;
  /** The run dir's part may be returned for later (none when the record is kept: it is done in line). */
  readonly splitRunDir: boolean;
}

/**
 * Undoes what the engine depends on; returns the rest when `how.splitRunDir` allows it, having
 * done everything otherwise. A failed undo leaves the record with what is still to undo, and throws.
 */
export async function releaseEngineSide(o: ServiceOptions, record: ContainerRecord, how: ReleaseHow): Promise<RunDirRest | undefined> {
  const hasVolumes = o.volumes.list().some((c) => c.id === record.id);
  const keepVolumes = hasVolumes && how.keep && record.volumes !== undefined && !record.volumes.autoRemove;
  const keepClone = record.clone !== undefined && how.keep && !record.clone.autoRemove;
  const split = how.splitRunDir && !keepVolumes && !keepClone;
  const steps = new StepTimings();
  const later = await undoActions(o, record, steps, split ? (a) => !ENGINE_UNSEEN.has(a.kind) : () => true, { leaveTargets: split });
  if (!split) {
    finishRunDir(o, record, steps, { bundleRemoved: false });
    if (keepVolumes || keepClone) {
      saveRecord(o, { ...record, actions: [], stopped: true });
      if (keepVolumes && record.volumes !== undefined) await syncOut(o, record.id, record.volumes);
      return undefined;
    }
    await forget(o, record, hasVolumes);
    return undefined;
  }
  o.log.debug({ id: record.id, ...steps.summary() }, 'engine-side release steps');
  return async () => {
    // First the hint: a second `delete` then finds no reason to ask the manager.
    o.bundles.removeHint(record.id);
    // The delete call that waited for the engine's part is read and answered next (if it came).
    await nextTurn();
    await nextTurn();
    faultPoint('delete:engine-released');
    o.bundles.remove(record.id);
    await nextTurn();
    const rest = new StepTimings();
    // One step at a time, the event loop's turn between two: a delete whose answer waits for no
    // more than the engine's part gets it in between (each umount2 or rmdir blocks the loop).
    await undoActions(o, { ...record, actions: later }, rest, () => true, { leaveTargets: false, between: nextTurn });
    for (const action of record.actions) if (LEFT_TARGET.has(action.kind) && 'target' in action) undoMountTarget(record, action.target);
    rest.mark('targets');
    await nextTurn();
    finishRunDir(o, record, rest, { bundleRemoved: true });
    await nextTurn();
    await forget(o, record, hasVolumes);
  };
}

/** The event loop's next turn: what came in on the manager's sockets meanwhile is read first. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Undoes the record's actions that `now` picks (last first); returns those it left for later. */
async function undoActions(
  o: ServiceOptions,
  record: ContainerRecord,
  steps: StepTimings,
  now: (a: HostAction) => boolean,
  how: { leaveTargets: boolean; between?: () => Promise<void> },
): Promise<HostAction[]> {
  const failures: string[] = [];
  const remaining: HostAction[] = [];
  const later: HostAction[] = [];
  for (const action of [...record.actions].reverse()) {
    if (!now(action)) {
      later.unshift(action);
      continue;
    }
    try {
      o.executor.undo(record, action, how);
      steps.mark(`undo.${action.kind}`);
      await how.between?.();
    } catch (err) {
      failures.push((err as Error).message);
      remaining.unshift(action);
    }
  }
  if (failures.length > 0) {
    // What failed and what was left for later, in their order in the record.
    const left = new Set([...remaining, ...later]);
    saveRecord(o, { ...record, actions: record.actions.filter((a) => left.has(a)) });
    throw new ServiceError('host-action-failed', `release ${record.id}: ${failures.join('; ')}`);
  }
  return later;
}

/** Once every action is undone: the executor's fds, the watch, the prepared bundle and the run dir go. */
function finishRunDir(o: ServiceOptions, record: ContainerRecord, steps: StepTimings, done: { bundleRemoved: boolean }): void {
  faultPoint('delete:undone');
  o.executor.forget(record.id);
  o.tracker?.untrack(record.id);
  if (!done.bundleRemoved) o.bundles.remove(record.id);
  // Created by sysrunc before 0.2, which rewrote the caller's config.json in place.
  if (record.preparedBundle !== true) restoreLegacyBundleConfig(record.bundle);
  removeRunDir(record.runDir);
  steps.mark('runDir');
  o.log.debug({ id: record.id, ...steps.summary() }, 'release steps');
}

/** A container removed: its clone and volumes destroyed, its range freed, its record gone. */
async function forget(o: ServiceOptions, record: ContainerRecord, hasVolumes: boolean): Promise<void> {
  if (record.clone !== undefined) o.executor.discard(record.id);
  if (hasVolumes) await o.volumes.destroyVolumes(record.id);
  freeRangeUnlessShared(o, record);
  o.registry.remove(record.id);
}

/** Saves a record; one that must outlive a reboot makes its allocation durable too. */
export function saveRecord(o: ServiceOptions, record: ContainerRecord): void {
  if (o.registry.save(record).durable) o.allocator.flush();
}

/** Frees the range the record used, unless another record (a container sharing it) still uses it. */
function freeRangeUnlessShared(o: ServiceOptions, record: ContainerRecord): void {
  const key = rangeKeyOf(record);
  if (key === undefined || o.allocator.lookup(key) === undefined) return;
  if (o.registry.all().some((r) => r.id !== record.id && rangeKeyOf(r) === key)) return;
  o.allocator.free(key);
}

/**
 * Syncs a stopped container's store volumes out into its rootfs, so `docker commit` and `docker cp`
 * see them. This runs inside the runtime's delete, so it is over before dockerd (or containerd's
 * shim) unmounts the rootfs and before a `docker rm` can start deleting the layer: copying later,
 * concurrently with that removal, made dockerd's rmdir of the layer fail with ENOTEMPTY.
 * For an overlay the copy goes straight into the upper dir: dockerd's merged mount has the image's
 * store path cached as a lower-only dentry, and a copy-up through it would collide with the upper
 * entries the container made through sysrunc's own overlay. Failures are logged, never thrown:
 * the volumes are intact and kept, so the next start still has the data.
 */
async function syncOut(o: ServiceOptions, id: string, volumes: NonNullable<ContainerRecord['volumes']>): Promise<void> {
  const target = volumes.upperdir ?? volumes.rootfs;
  try {
    // Only this container's volumes are involved (the volume manager serializes per container),
    // so other containers' creates and deletes need not wait for a copy of gigabytes.
    const synced = await o.unlocked(() => o.volumes.syncOut(id, { rootfs: target, intoUpperdir: volumes.upperdir !== undefined }));
    o.log.info({ id, into: target, volumes: synced.volumes.map((v) => ({ mountpoint: v.mountpoint, mode: v.mode, entries: v.entries, kept: v.kept, bytes: v.bytes, ms: v.ms })) }, 'synced store volumes out');
  } catch (err) {
    o.log.error({ id, err: (err as Error).message }, 'store volume sync-out failed; the volumes keep the data');
  }
}
