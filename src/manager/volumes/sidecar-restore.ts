// Reading a rootfs's sidecar and restoring what it recorded (whiteouts, xattrs) into a copy. Its
// own file: both the copy-mode sync-out and the in-layer volumes use it, and volume-fs.ts (which
// in-layer.ts's removals serve) must not be imported back by in-layer.ts.
import { closeSync } from 'node:fs';
import path from 'node:path';
import { SyscallError } from '../../host/libc.ts';
import type { Rootfs } from '../../host/in-root.ts';
import { VolumeError, describe } from './errors.ts';
import { readSidecarEntries, sidecarName, type SidecarEntry } from './sidecar.ts';
import { applySidecar } from './sidecar-apply.ts';

/** A sidecar of the rootfs, open for reading; close() when done. */
export interface OpenSidecar {
  readonly entries: Iterable<SidecarEntry>;
  close(): void;
}

// A version 2 sidecar is read a line at a time; the cap only bounds how long a read may take.
const MAX_SIDECAR_BYTES = 4 * 1024 * 1024 * 1024;

/** The sidecar next to rootfsPath, if the rootfs has one (a regular file: see Rootfs.openRegularFile). */
export function openSidecar(r: Rootfs, rootfsPath: string): OpenSidecar | undefined {
  const file = path.posix.join(path.posix.dirname(rootfsPath), sidecarName(path.posix.basename(rootfsPath)));
  const fd = r.openRegularFile(file, MAX_SIDECAR_BYTES);
  if (fd === undefined) return undefined;
  const label = r.label(file);
  return {
    entries: (function* () {
      try {
        yield* readSidecarEntries(fd);
      } catch (err) {
        if (err instanceof SyscallError) throw err;
        throw new VolumeError(`${label}: ${describe(err)} (delete it to sync in without it)`);
      }
    })(),
    close: () => closeSync(fd),
  };
}

/** Copies a store path's tree, then restores what its sidecar recorded (whiteouts, xattrs) into the copy. */
export async function restoreSidecar(r: Rootfs, rootfsPath: string, dstRoot: string, dstLabel: string): Promise<number> {
  const sidecar = openSidecar(r, rootfsPath);
  if (sidecar === undefined) return 0;
  try {
    return (await applySidecar(sidecar.entries, dstRoot, dstLabel)).whiteouts;
  } finally {
    sidecar.close();
  }
}
