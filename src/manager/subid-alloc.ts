// Subordinate uid/gid allocation for containers (sysbox-mgr's SubidAlloc).
//
// Every change is handed to `persist` before it takes effect in memory or is
// returned, so a crash can lose an answer but never hand a range out twice.

import { z } from 'zod';
import type { IdRange } from './subid-ranges.ts';

export type SubidErrorCode = 'exhausted' | 'invalid-size' | 'not-found';

/** `exclusive`: disjoint range per container. `common`: every container shares one range (sysbox-CE). */
export type SubidMode = 'exclusive' | 'common';

export interface SubidAllocation {
  /** First host uid; container uid 0 maps here. */
  uid: number;
  /** First host gid; container gid 0 maps here. */
  gid: number;
  /** Number of ids in both the uid and the gid range. */
  size: number;
}

export interface SubidAllocationRecord extends SubidAllocation {
  id: string;
}

export interface SubidState {
  version: 1;
  mode: SubidMode;
  allocations: SubidAllocationRecord[];
}

/** What a persisted state change did: gave a range out, or took one back. */
export type SubidChange = 'alloc' | 'free';

export interface SubidAllocatorConfig {
  /** Subordinate uids sysrunc may hand out (e.g. from ensureSysruncRange). */
  uidRanges: readonly IdRange[];
  gidRanges: readonly IdRange[];
  /** Default 'exclusive'. */
  mode?: SubidMode;
  /** Smallest size alloc accepts (default 65536, so uid/gid 65534 "nobody" fits). */
  minSize?: number;
}

export interface SubidAllocatorOptions extends SubidAllocatorConfig {
  /** Previously persisted state; its allocations are live and kept even if outside the ranges. */
  restored?: SubidState;
  /** How `restored` was put together, if worth saying (listed first among the warnings). */
  restoredNotes?: readonly string[];
  /**
   * Called with the complete new state before every change takes effect; throwing aborts the
   * change. `change` says which kind it is (a store may defer an allocation's write: subid-store.ts).
   */
  persist?: (state: SubidState, change: SubidChange) => void;
}

export const DEFAULT_SUBID_SIZE = 65536;
/** Largest size the seed interface allows (uint64 size, uint32 ids). */
export const MAX_SUBID_SIZE = 2 ** 32;
/** Host id 0 is root and 2^32-1 is the invalid id (uid_t)-1: neither is ever handed out. */
const FIRST_ID = 1;
const ID_SPACE_END = 2 ** 32 - 1;

export class SubidError extends Error {
  readonly code: SubidErrorCode;
  readonly containerId: string;

  constructor(code: SubidErrorCode, containerId: string, detail: string) {
    super(`subid allocation for container "${containerId}": ${code}: ${detail}`);
    this.name = 'SubidError';
    this.code = code;
    this.containerId = containerId;
  }
}

const allocationRecordSchema = z
  .object({
    id: z.string().min(1),
    uid: z.number().int().min(0).max(ID_SPACE_END),
    gid: z.number().int().min(0).max(ID_SPACE_END),
    size: z.number().int().min(1).max(MAX_SUBID_SIZE),
  })
  .refine((a) => a.uid + a.size <= 2 ** 32 && a.gid + a.size <= 2 ** 32, { message: 'range goes past 2^32' });

export const subidStateSchema: z.ZodType<SubidState> = z
  .object({
    version: z.literal(1),
    mode: z.enum(['exclusive', 'common']),
    allocations: z.array(allocationRecordSchema),
  })
  .refine((s) => new Set(s.allocations.map((a) => a.id)).size === s.allocations.length, {
    message: 'duplicate container id in allocations',
    path: ['allocations'],
  });

export class SubidAllocator {
  /** Makes the persisted state durable (set by openSubidAllocator; a no-op in memory). */
  flush: () => void = () => {};

  readonly mode: SubidMode;
  readonly minSize: number;
  /** Problems found in the restored state (allocations kept as they are live). */
  readonly warnings: readonly string[];

  readonly #uidRanges: IdRange[];
  readonly #gidRanges: IdRange[];
  readonly #persist: (state: SubidState, change: SubidChange) => void;
  readonly #allocations = new Map<string, SubidAllocation>();

  constructor(options: SubidAllocatorOptions) {
    this.mode = options.mode ?? 'exclusive';
    this.minSize = options.minSize ?? DEFAULT_SUBID_SIZE;
    if (!Number.isInteger(this.minSize) || this.minSize < 1 || this.minSize > MAX_SUBID_SIZE) {
      throw new TypeError(`invalid minimum subid size ${this.minSize}: must be an integer in [1, 2^32]`);
    }
    this.#uidRanges = normalizeRanges(options.uidRanges, 'uid');
    this.#gidRanges = normalizeRanges(options.gidRanges, 'gid');
    this.#persist = options.persist ?? (() => {});
    this.warnings = [...(options.restoredNotes ?? []), ...(options.restored ? this.#restore(options.restored) : [])];
  }

  /**
   * Returns the range of `id`, allocating it on first call. Idempotent: the
   * same id gets the same range back as long as `size` matches; asking for a
   * different size for a live id is invalid-size (free it first).
   */
  alloc(id: string, size: number = DEFAULT_SUBID_SIZE): SubidAllocation {
    checkId(id);
    this.#checkSize(id, size);
    const existing = this.#allocations.get(id);
    if (existing) {
      if (existing.size === size) return { ...existing };
      throw new SubidError(
        'invalid-size',
        id,
        `already holds ${existing.size} ids (uid ${existing.uid}, gid ${existing.gid}); requested ${size}, free it first to resize`,
      );
    }
    const placed = this.mode === 'common' ? this.#placeCommon(id, size) : this.#placeExclusive(size);
    if (!placed) {
      throw new SubidError(
        'exhausted',
        id,
        `no free range of ${size} ids left in sysrunc's ${this.#capacityText()} (${this.#allocations.size} containers hold ids)`,
      );
    }
    const allocation: SubidAllocation = { uid: placed.uid, gid: placed.gid, size };
    this.#persist(this.#stateWith(id, allocation), 'alloc');
    this.#allocations.set(id, allocation);
    return { ...allocation };
  }

  /** Releases the range of `id`; not-found if it holds none. */
  free(id: string): void {
    checkId(id);
    if (!this.#allocations.has(id)) throw new SubidError('not-found', id, 'no subordinate ids are allocated to it');
    this.#persist(this.#stateWith(id, undefined), 'free');
    this.#allocations.delete(id);
  }

  lookup(id: string): SubidAllocation | undefined {
    const a = this.#allocations.get(id);
    return a ? { ...a } : undefined;
  }

  /** Live allocations in allocation order. */
  list(): SubidAllocationRecord[] {
    return [...this.#allocations].map(([id, a]) => ({ id, ...a }));
  }

  /** The pool and what is free in it (operators' status). */
  pool(): { uid: IdRange[]; gid: IdRange[]; freeUid: IdRange[]; freeGid: IdRange[] } {
    const all = [...this.#allocations.values()];
    return {
      uid: this.#uidRanges.map((r) => ({ ...r })),
      gid: this.#gidRanges.map((r) => ({ ...r })),
      freeUid: subtract(this.#uidRanges, all.map((a) => ({ start: a.uid, size: a.size }))),
      freeGid: subtract(this.#gidRanges, all.map((a) => ({ start: a.gid, size: a.size }))),
    };
  }

  /** The state as persisted. */
  state(): SubidState {
    return { version: 1, mode: this.mode, allocations: this.list() };
  }

  #checkSize(id: string, size: number): void {
    if (typeof size !== 'number' || !Number.isInteger(size)) {
      throw new SubidError('invalid-size', id, `size ${size} is not an integer`);
    }
    if (size < this.minSize || size > MAX_SUBID_SIZE) {
      throw new SubidError('invalid-size', id, `size ${size} is outside [${this.minSize}, 2^32]`);
    }
    const largest = Math.min(largestRange(this.#uidRanges), largestRange(this.#gidRanges));
    if (size > largest) {
      throw new SubidError(
        'invalid-size',
        id,
        `size ${size} can never fit: the largest contiguous block of sysrunc's ${this.#capacityText()} is ${largest} ids`,
      );
    }
  }

  #placeExclusive(size: number): { uid: number; gid: number } | undefined {
    const all = [...this.#allocations.values()];
    const uidGaps = subtract(this.#uidRanges, all.map((a) => ({ start: a.uid, size: a.size })));
    const gidGaps = subtract(this.#gidRanges, all.map((a) => ({ start: a.gid, size: a.size })));
    return placeTogether(uidGaps, gidGaps, size);
  }

  /**
   * The shared range is where an allocation of `size` would go if nothing
   * were allocated: deterministic, so all containers get the same range and it
   * survives restarts. One range means one size while any container is live.
   */
  #placeCommon(id: string, size: number): { uid: number; gid: number } | undefined {
    const other = [...this.#allocations.values()].find((a) => a.size !== size);
    if (other) {
      throw new SubidError(
        'invalid-size',
        id,
        `common mode: live containers share a range of ${other.size} ids; requested ${size}`,
      );
    }
    return placeTogether(this.#uidRanges, this.#gidRanges, size);
  }

  #stateWith(id: string, allocation: SubidAllocation | undefined): SubidState {
    const next = new Map(this.#allocations);
    if (allocation) next.set(id, allocation);
    else next.delete(id);
    return { version: 1, mode: this.mode, allocations: [...next].map(([i, a]) => ({ id: i, ...a })) };
  }

  #capacityText(): string {
    const uids = totalSize(this.#uidRanges);
    const gids = totalSize(this.#gidRanges);
    return uids === gids ? `${uids} subordinate ids` : `${uids} subordinate uids / ${gids} subordinate gids`;
  }

  #restore(restored: SubidState): string[] {
    const warnings: string[] = [];
    if (restored.mode !== this.mode) {
      warnings.push(
        `subid mode changed from ${restored.mode} to ${this.mode}; ${restored.allocations.length} live allocations kept as they are`,
      );
    }
    for (const a of restored.allocations) {
      if (this.#allocations.has(a.id)) throw new TypeError(`restored subid state lists container "${a.id}" twice`);
      this.#allocations.set(a.id, { uid: a.uid, gid: a.gid, size: a.size });
      if (!contains(this.#uidRanges, a.uid, a.size) || !contains(this.#gidRanges, a.gid, a.size)) {
        warnings.push(
          `container "${a.id}" holds uids [${a.uid}, ${a.uid + a.size}) and gids [${a.gid}, ${a.gid + a.size}) ` +
            `outside sysrunc's configured subordinate ranges; kept because it is live`,
        );
      }
    }
    return warnings;
  }
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id === '') throw new TypeError('container id must be a non-empty string');
}

/** Sorted, merged, clipped to [1, 2^32-1). */
function normalizeRanges(ranges: readonly IdRange[], kind: string): IdRange[] {
  const clipped: IdRange[] = [];
  for (const r of ranges) {
    if (!Number.isInteger(r.start) || !Number.isInteger(r.size) || r.start < 0 || r.size < 0) {
      throw new TypeError(`invalid subordinate ${kind} range start=${r.start} size=${r.size}`);
    }
    const start = Math.max(r.start, FIRST_ID);
    const end = Math.min(r.start + r.size, ID_SPACE_END);
    if (end > start) clipped.push({ start, size: end - start });
  }
  return union(clipped);
}

function union(ranges: readonly IdRange[]): IdRange[] {
  const sorted = [...ranges].filter((r) => r.size > 0).sort((a, b) => a.start - b.start);
  const out: IdRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.size) {
      last.size = Math.max(last.size, r.start + r.size - last.start);
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** `available` (sorted, disjoint) minus `taken` (any order, may overlap). */
function subtract(available: readonly IdRange[], taken: readonly IdRange[]): IdRange[] {
  const holes = union(taken);
  const out: IdRange[] = [];
  let h = 0;
  for (const r of available) {
    let cursor = r.start;
    const end = r.start + r.size;
    while (h < holes.length && holes[h]!.start + holes[h]!.size <= cursor) h++;
    for (let k = h; k < holes.length && holes[k]!.start < end; k++) {
      const hole = holes[k]!;
      if (hole.start > cursor) out.push({ start: cursor, size: hole.start - cursor });
      cursor = Math.max(cursor, hole.start + hole.size);
    }
    if (cursor < end) out.push({ start: cursor, size: end - cursor });
  }
  return out;
}

/** Ids present in both sorted, disjoint lists. */
function intersect(a: readonly IdRange[], b: readonly IdRange[]): IdRange[] {
  const out: IdRange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const start = Math.max(x.start, y.start);
    const end = Math.min(x.start + x.size, y.start + y.size);
    if (end > start) out.push({ start, size: end - start });
    if (x.start + x.size < y.start + y.size) i++;
    else j++;
  }
  return out;
}

/** Same offset for uid and gid when some gap allows it, else first fit in each. */
function placeTogether(
  uidGaps: readonly IdRange[],
  gidGaps: readonly IdRange[],
  size: number,
): { uid: number; gid: number } | undefined {
  const same = firstFit(intersect(uidGaps, gidGaps), size);
  if (same !== undefined) return { uid: same, gid: same };
  const uid = firstFit(uidGaps, size);
  const gid = firstFit(gidGaps, size);
  return uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
}

function firstFit(gaps: readonly IdRange[], size: number): number | undefined {
  return gaps.find((g) => g.size >= size)?.start;
}

function contains(ranges: readonly IdRange[], start: number, size: number): boolean {
  return ranges.some((r) => r.start <= start && start + size <= r.start + r.size);
}

function largestRange(ranges: readonly IdRange[]): number {
  return ranges.reduce((max, r) => Math.max(max, r.size), 0);
}

function totalSize(ranges: readonly IdRange[]): number {
  return ranges.reduce((sum, r) => sum + r.size, 0);
}
