// Removing one entry of a container's run dir that is often absent (most containers have no mount
// listener, many no binds): an lstat first, since building a thrown ENOENT costs more than the
// lstat; an entry gone in between is no error either. Any other failure is one line naming the path.
import { lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import { ServiceError } from './service-error.ts';

/** Removes the file (or, kind 'dir', the empty directory) at p if it is there. */
export function removeRunEntry(p: string, kind: 'file' | 'dir'): void {
  if (lstatSync(p, { throwIfNoEntry: false }) === undefined) return;
  try {
    if (kind === 'dir') rmdirSync(p);
    else unlinkSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new ServiceError('host-action-failed', `remove ${p}: ${code ?? String(err)}`);
  }
}
