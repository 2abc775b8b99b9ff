// A bind source another live container has re-owned on disk (chown-tree) is exclusive to it.
import type { HostAction } from '../manager-api/v1.ts';
import type { ContainerRecord } from './registry.ts';

/**
 * Shifting such a path again by this container's offset would take it away from the first one:
 * those actions are left out, each with a warning.
 */
export function skipSharedChowns(records: readonly ContainerRecord[], id: string, actions: readonly HostAction[]): { actions: HostAction[]; warnings: string[] } {
  const owners = new Map<string, string>();
  for (const other of records) {
    if (other.id === id || other.stopped === true) continue;
    for (const a of other.actions) if (a.kind === 'chown-tree') owners.set(a.path, other.id);
  }
  const kept: HostAction[] = [];
  const warnings: string[] = [];
  for (const action of actions) {
    const owner = action.kind === 'chown-tree' ? owners.get(action.path) : undefined;
    if (action.kind !== 'chown-tree' || owner === undefined) {
      kept.push(action);
      continue;
    }
    warnings.push(`bind source ${action.path} is already re-owned for container ${owner}; not changing its ownership again for ${id} (its files show as nobody inside until ${owner} stops)`);
  }
  return { actions: kept, warnings };
}
