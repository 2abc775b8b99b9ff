// Which ids a chown by offset maps, and where: [0, size) shifts to [offset, offset + size) and
// back. With offset >= size the two domains are disjoint, which is what makes a re-run of the
// same shift or revert a no-op for what is already done (see chown-tree.ts).

export type ChownDirection = 'shift' | 'revert';

export interface IdOffset {
  uid: number;
  gid: number;
}

export const DEFAULT_RANGE_SIZE = 65536;
// (uid_t)-1 means "unchanged" to chown(2); the largest usable id is one below.
const MAX_ID = 0xfffffffe;

/** id mapped in direction; the id itself if already mapped; undefined if it is in neither domain. */
export function mapId(id: number, offset: number, size: number, direction: ChownDirection): number | undefined {
  const inShifted = id >= offset && id < offset + size;
  if (direction === 'shift') return id < size ? id + offset : inShifted ? id : undefined;
  return inShifted ? id - offset : id < size ? id : undefined;
}


export interface Plan {
  root: string;
  direction: ChownDirection;
  offset: IdOffset;
  size: number;
  exclude?: string[] | undefined;
}

export function validatePlan(plan: Plan): void {
  const { offset, size } = plan;
  for (const [name, v] of [['size', size], ['uid offset', offset.uid], ['gid offset', offset.gid]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`chown ${plan.root}: ${name} ${v} is not a non-negative integer`);
  }
  if (size < 1) throw new RangeError(`chown ${plan.root}: range size must be at least 1`);
  // Disjoint domains are what make a re-run safe (see the header comment).
  for (const [name, v] of [['uid', offset.uid], ['gid', offset.gid]] as const) {
    if (v < size) throw new RangeError(`chown ${plan.root}: ${name} offset ${v} is below the range size ${size}; shifted and unshifted ids would overlap`);
    if (v + size - 1 > MAX_ID) throw new RangeError(`chown ${plan.root}: ${name} offset ${v} + size ${size} exceeds the largest id ${MAX_ID}`);
  }
}

export interface Owner {
  uid: number;
  gid: number;
  outOfRange: boolean;
}

export function mapOwner(plan: Plan, uid: number, gid: number): Owner {
  const u = mapId(uid, plan.offset.uid, plan.size, plan.direction);
  const g = mapId(gid, plan.offset.gid, plan.size, plan.direction);
  return { uid: u ?? uid, gid: g ?? gid, outOfRange: u === undefined || g === undefined };
}
