// User-namespace fds for the manager's idmapped mounts, by mapping. An idmapped mount reads nothing
// of its user namespace but the mapping, so containers with one mapping share one namespace, and the
// last few namespaces whose containers went are kept: the allocator gives a new container the range
// just freed (a `docker run --rm` after another), and its namespaces then need no clone (~0.4 ms
// each, two per overlay rootfs). The namespaces hold no process; each fd is the only reference.
import { closeSync } from 'node:fs';
import type { IdMapping } from '../manager-api/v1.ts';
import { createUserNamespaceFd } from '../host/userns.ts';

/** How many namespaces no container uses are kept open. */
const KEEP_IDLE = 4;

export interface UsernsFdsOptions {
  /** Makes a namespace with these mappings (default: host/userns.ts's clone). */
  readonly create?: (uidMappings: readonly IdMapping[], gidMappings: readonly IdMapping[]) => number;
  readonly keepIdle?: number;
}

export class UsernsFds {
  private readonly inUse = new Map<string, { fd: number; owners: Set<string> }>();
  /** Namespaces no container uses, oldest first (a Map keeps insertion order). */
  private readonly idle = new Map<string, number>();
  private readonly create: NonNullable<UsernsFdsOptions['create']>;
  private readonly keepIdle: number;

  constructor(o: UsernsFdsOptions = {}) {
    this.create = o.create ?? createUserNamespaceFd;
    this.keepIdle = o.keepIdle ?? KEEP_IDLE;
  }

  /** The fd of a namespace with exactly these mappings, used by owner until release(owner). */
  get(owner: string, uidMappings: readonly IdMapping[], gidMappings: readonly IdMapping[]): number {
    const key = JSON.stringify([uidMappings, gidMappings]);
    const shared = this.inUse.get(key);
    if (shared !== undefined) {
      shared.owners.add(owner);
      return shared.fd;
    }
    let fd = this.idle.get(key);
    if (fd === undefined) fd = this.create(uidMappings, gidMappings);
    else this.idle.delete(key);
    this.inUse.set(key, { fd, owners: new Set([owner]) });
    return fd;
  }

  /** owner no longer uses its namespaces: kept idle for the next container, the oldest beyond the cap closed. */
  release(owner: string): void {
    for (const [key, entry] of this.inUse) {
      if (!entry.owners.delete(owner) || entry.owners.size > 0) continue;
      this.inUse.delete(key);
      this.idle.set(key, entry.fd);
    }
    for (const [key, fd] of this.idle) {
      if (this.idle.size <= this.keepIdle) break;
      closeSync(fd);
      this.idle.delete(key);
    }
  }

  /** Open fds: in use, and idle (for tests and the soak's fd count). */
  counts(): { inUse: number; idle: number } {
    return { inUse: this.inUse.size, idle: this.idle.size };
  }
}
