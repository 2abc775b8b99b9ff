// The subid allocator's state file (<state>/subid.json), and the allocator the manager opens on it.
//
// What keeps a range from being handed out twice across a manager crash is the container record:
// it is saved, with the range in its mappings, before any host action and before the create is
// answered (by apply; by register first where store volumes are made: service.ts).
// So the manager's allocator need not write subid.json inside the create: an allocation reaches
// the file after the request (deferred, one write for a burst of creates), and at start-up every
// range a record holds is put back into the allocator even if the file never got it. A free is
// written at once, before the record goes, as before. Without `deferAllocWrites` (the allocator
// alone, as its own kill -9 test runs it) every change is written before it is returned.
import { closeSync, existsSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir } from '../common/atomic-file.ts';
import { readJson, writeJsonAtomic } from './state-file.ts';
import { SubidAllocator, subidStateSchema, type SubidAllocationRecord, type SubidAllocatorConfig, type SubidChange, type SubidState } from './subid-alloc.ts';

/** Persists SubidState as a JSON file (mode 0600, atomic replace). */
export class SubidStore {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** undefined if the file does not exist yet; throws StateFileError if it is corrupt. */
  load(): SubidState | undefined {
    return readJson(this.path, subidStateSchema);
  }

  /** Not fsynced: see flush. */
  save(state: SubidState): void {
    writeJsonAtomic(this.path, state, { durable: false });
  }

  /**
   * Makes the last save durable. Called when a container record that outlives a reboot is saved:
   * only then must its allocation survive a power loss (a running container's does not).
   */
  flush(): void {
    const fd = openSync(this.path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDir(dirname(this.path));
  }
}

export interface OpenSubidAllocatorOptions extends SubidAllocatorConfig {
  readonly store: SubidStore;
  /**
   * The ranges the manager's container records hold, each under its allocator key: put back into
   * the allocator at start-up where the file lacks them (the manager died before writing it).
   */
  readonly held?: readonly SubidAllocationRecord[];
  /** Runs `write` later (after the request under way): an allocation's write leaves the create's path. */
  readonly deferAllocWrites?: (write: () => void) => void;
}

/** An allocator restored from `store` (and `held`) that persists every change to it. */
export function openSubidAllocator(options: OpenSubidAllocatorOptions): SubidAllocator {
  const { store, held = [], deferAllocWrites, ...config } = options;
  const loaded = store.load();
  const { state: restored, notes } = withHeldRanges(loaded, held, config.mode ?? 'exclusive');
  if (notes.length > 0) store.save(restored);
  const writer = new StateWriter(store, deferAllocWrites);
  const allocator = new SubidAllocator({
    ...config,
    ...(loaded === undefined && notes.length === 0 ? {} : { restored, restoredNotes: notes }),
    persist: (state, change) => writer.persist(state, change),
  });
  allocator.flush = () => {
    writer.writePending();
    if (existsSync(store.path)) store.flush();
  };
  return allocator;
}

/** The file's allocations, with each range a record holds and the file lacks (or differs on) taken from the record. */
function withHeldRanges(loaded: SubidState | undefined, held: readonly SubidAllocationRecord[], mode: SubidState['mode']): { state: SubidState; notes: string[] } {
  const allocations = new Map((loaded?.allocations ?? []).map((a) => [a.id, a]));
  const notes: string[] = [];
  for (const h of held) {
    const known = allocations.get(h.id);
    if (known !== undefined && known.uid === h.uid && known.gid === h.gid && known.size === h.size) continue;
    allocations.set(h.id, { ...h });
    notes.push(
      known === undefined
        ? `subid state: the range of "${h.id}" (uids [${h.uid}, ${h.uid + h.size})) was taken back from its container record; the manager had stopped before writing it`
        : `subid state: the range of "${h.id}" differs from its container record's; the record's (uids [${h.uid}, ${h.uid + h.size})) is the one in use and is kept`,
    );
  }
  return { state: { version: 1, mode: loaded?.mode ?? mode, allocations: [...allocations.values()] }, notes };
}

/** Writes each change, or with a defer function, an allocation's later (the latest state, once). */
class StateWriter {
  #pending: SubidState | undefined;
  #scheduled = false;

  constructor(
    private readonly store: SubidStore,
    private readonly defer: ((write: () => void) => void) | undefined,
  ) {}

  persist(state: SubidState, change: SubidChange): void {
    if (change === 'alloc' && this.defer !== undefined) {
      this.#pending = state;
      if (!this.#scheduled) {
        this.#scheduled = true;
        this.defer(() => {
          this.#scheduled = false;
          this.writePending();
        });
      }
      return;
    }
    this.store.save(state);
    // Written whole: a deferred allocation's state is in it, or the allocation is gone.
    this.#pending = undefined;
  }

  writePending(): void {
    const state = this.#pending;
    if (state === undefined) return;
    this.store.save(state);
    this.#pending = undefined;
  }
}
