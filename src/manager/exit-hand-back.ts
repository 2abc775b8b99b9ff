// At a container's exit, the engine's overlay goes back to the engine's path at once, instead of
// inside runc's delete. An engine asks for the delete only once it has heard of the exit (dockerd
// ~20 ms after it, through containerd's shim and events), so the swap is done by the time the
// synchronous delete asks the manager, and that delete's release has nothing of the engine's left
// to wait for (bench/README.md, round 8).
//
// Only where nothing of the container can still be using sysrunc's overlay: the container made its
// own pid and mount namespaces (the watch checks that before it watches the init: the kernel kills
// the rest of a pid namespace with its init), and its one engine-side action is the overlay swap
// (no clone or chown to revert, no store volumes to sync out: those stay for the delete, which
// does them in order). The later release undoes the swap again, which finds the engine's overlay in
// place and leaves it (every undo is idempotent).
import type { HostAction } from '../manager-api/v1.ts';
import { processIsAlive, runcKnowsContainer, type KnownProcess } from './liveness.ts';
import type { ContainerRecord } from './registry.ts';
import { ENGINE_UNSEEN } from './release-record.ts';
import type { ServiceOptions } from './service-options.ts';

/** The engine overlay swaps a record's exit may undo; none when anything else must wait for the delete. */
function swapsUndoneAtExit(record: ContainerRecord): HostAction[] {
  if (record.stopped === true || record.volumes !== undefined || record.clone !== undefined) return [];
  const swaps = record.actions.filter((a) => a.kind === 'overlay-mount' && a.replaces !== undefined);
  const others = record.actions.filter((a) => !swaps.includes(a));
  return others.every((a) => ENGINE_UNSEEN.has(a.kind)) ? swaps : [];
}

/**
 * The container's init was seen to exit: the engine's overlay goes back to its path now, if runc
 * still has the container (else its release is under way or due) and its init is indeed gone.
 * Returns whether it did. A failure is logged, not thrown: the delete's release tries again.
 */
export function handBackAtExit(o: ServiceOptions, record: ContainerRecord, init: KnownProcess): boolean {
  const swaps = swapsUndoneAtExit(record);
  if (swaps.length === 0 || !runcKnowsContainer(record.runtimeRoot, record.id) || processIsAlive(init.pid, init.startTime)) return false;
  try {
    for (const action of swaps.reverse()) o.executor.undo(record, action, { leaveTargets: true });
  } catch (err) {
    o.log.warn({ id: record.id, err: (err as Error).message }, "returning the engine's overlay at the container's exit failed; its delete tries again");
    return false;
  }
  o.log.info({ id: record.id }, "returned the engine's overlay at the container's exit");
  return true;
}
