// A new container's id range from the allocator, as the manager's service gives it.
import { ServiceError } from './service-error.ts';
import type { ServiceOptions } from './service-options.ts';
import { SubidError } from './subid-alloc.ts';

/** Allocates size ids for id; a ServiceError (exhausted, conflict, ...) when it cannot. */
export function allocateRange(o: ServiceOptions, id: string, size: number): { uid: number; gid: number; size: number } {
  // A range kept for the containers that share it, under the id of one that is gone: a new
  // namesake must not get it (it would share ids with them).
  const sharers = o.registry.all().filter((r) => r.sharedRange === id);
  if (o.registry.get(id) === undefined && o.allocator.lookup(id) !== undefined && sharers.length > 0) {
    throw new ServiceError('conflict', `container ${id}: the range of an earlier container of this id is still shared by ${sharers.map((r) => r.id).join(', ')}`);
  }
  try {
    return o.allocator.alloc(id, size);
  } catch (err) {
    if (err instanceof SubidError) throw new ServiceError(err.code, err.message);
    throw err;
  }
}
