// The resource limit options the depot's and the tenant service's commands share: `--cpu <cores>`
// (a CFS quota) and `--memory <bytes>`, with the same syntax and meaning in both.
import { InvalidArgumentError } from 'commander';

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${value}: expected a positive number`);
  return n;
}

export const CPU_OPTION = { flags: '--cpu <cores>', description: 'CPU limit in cores', parse: positiveNumber } as const;
export const MEMORY_OPTION = { flags: '--memory <bytes>', description: 'memory limit', parse: (v: string): number => Math.round(positiveNumber(v)) } as const;
