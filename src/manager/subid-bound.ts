// The most ids one container may ask for (sysrunc-mgr --max-subid-size), whatever chose the size:
// the operator's bound, or the default size x 16; never so large that one container could take the
// whole pool (it leaves at least one default-size range free).
import type { Logger } from 'pino';

/** How many times the default size one container may ask for, unless the operator says otherwise. */
export const MAX_SIZE_FACTOR = 16;

export function maxSubidSize(
  o: { readonly defaultSize: number; readonly wanted?: number },
  uidPool: readonly { size: number }[],
  gidPool: readonly { size: number }[],
  log: Pick<Logger, 'warn'>,
): number {
  const wanted = o.wanted ?? o.defaultSize * MAX_SIZE_FACTOR;
  if (wanted < o.defaultSize) throw new Error(`--max-subid-size ${wanted} is below --subid-size ${o.defaultSize}`);
  const pool = Math.min(...[uidPool, gidPool].map((ranges) => ranges.reduce((sum, r) => sum + r.size, 0)));
  const ceiling = Math.max(o.defaultSize, pool - o.defaultSize);
  if (wanted <= ceiling) return wanted;
  log.warn({ wanted, pool, bound: ceiling }, 'the largest range one container may ask for is lowered so that one container cannot take the whole pool');
  return ceiling;
}
