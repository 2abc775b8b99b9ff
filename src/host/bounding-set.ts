import { readFileSync } from 'node:fs';
import { SysruncError } from '../common/errors.ts';
import { capabilitiesInMask } from '../oci/capabilities.ts';

/** The capability bounding set of a process (default: this one): what runc there can grant. */
export function boundingSetOf(pid: number | 'self' = 'self'): string[] {
  const file = `/proc/${pid}/status`;
  let status: string;
  try {
    status = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SysruncError(`${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const mask = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (mask === undefined) throw new SysruncError(`${file}: no CapBnd line`);
  return capabilitiesInMask(mask);
}
