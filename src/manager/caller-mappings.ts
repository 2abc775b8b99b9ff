// Checks the id mappings of a config that brings its own user namespace before the manager
// records anything: such mappings are the caller's word, and a wrong one would hand host root, or
// ids of another container, to this one.
import type { IdMapping } from '../manager-api/v1.ts';
import { ServiceError } from './service-error.ts';
import type { IdRange } from './subid-ranges.ts';

/** One past the largest id: uid_t and gid_t are 32 bits. */
export const ID_LIMIT = 2 ** 32;

/** A host id range the manager has handed to another container. */
export interface HeldRange {
  readonly id: string;
  readonly start: number;
  readonly size: number;
}

/**
 * Throws a ServiceError ('invalid-request') naming the first problem: an empty range, a range past
 * 2^32, host id 0 mapped, two entries overlapping on either side, a host range overlapping one
 * the manager holds for another container, or one overlapping sysrunc's own pool (`pool`, the
 * sysrunc lines of /etc/subuid or /etc/subgid). The caller's range (a Kubernetes pod's with
 * hostUsers: false, chosen by the kubelet) is then used as it is, never allocated a second time:
 * the manager allocates only from its pool, which such a range cannot touch.
 */
export function checkCallerMappings(id: string, kind: 'uid' | 'gid', mappings: readonly IdMapping[], held: readonly HeldRange[], pool: readonly IdRange[] = []): void {
  const refuse = (why: string): never => {
    throw new ServiceError('invalid-request', `container ${id}: its ${kind} mappings ${why}`);
  };
  const show = (m: IdMapping): string => `${m.containerID} ${m.hostID} ${m.size}`;
  for (const m of mappings) {
    if (m.size <= 0) refuse(`have an entry of size 0 (${show(m)})`);
    if (m.hostID + m.size > ID_LIMIT || m.containerID + m.size > ID_LIMIT) refuse(`have an entry past id 2^32 (${show(m)})`);
    if (m.hostID === 0) refuse(`map host ${kind} 0 into the container; sysrunc never does`);
  }
  for (const [i, a] of mappings.entries()) {
    for (const b of mappings.slice(i + 1)) {
      if (overlaps(a.hostID, a.size, b.hostID, b.size)) refuse(`have overlapping host ranges (${show(a)} and ${show(b)})`);
      if (overlaps(a.containerID, a.size, b.containerID, b.size)) refuse(`have overlapping container ranges (${show(a)} and ${show(b)})`);
    }
  }
  for (const m of mappings) {
    const other = held.find((h) => h.id !== id && overlaps(m.hostID, m.size, h.start, h.size));
    if (other !== undefined) {
      refuse(`map host ${kind}s ${m.hostID}-${m.hostID + m.size - 1}, which overlap ${other.start}-${other.start + other.size - 1} that sysrunc gave to container ${other.id}`);
    }
  }
  for (const m of mappings) {
    const range = pool.find((r) => overlaps(m.hostID, m.size, r.start, r.size));
    if (range !== undefined) {
      const file = kind === 'uid' ? '/etc/subuid' : '/etc/subgid';
      refuse(`map host ${kind}s ${m.hostID}-${m.hostID + m.size - 1}, which overlap sysrunc's own pool ${range.start}-${range.start + range.size - 1} (user sysrunc in ${file}); give the caller (a kubelet: its own ${file} range) ids outside it`);
    }
  }
}

function overlaps(aStart: number, aSize: number, bStart: number, bSize: number): boolean {
  return aStart < bStart + bSize && bStart < aStart + aSize;
}
