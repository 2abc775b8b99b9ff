// Can the filesystem under a path be idmapped? Answered by trying: a detached
// clone of the path's mount is idmapped with a throwaway user namespace and
// dropped again without ever being attached.
import { statSync } from 'node:fs';
import { SyscallError, fromNodeError, libc } from './libc.ts';
import { fsTypeAt, openTreeClone, setIdmap } from './mount.ts';
import { createUserNamespaceFd } from './userns.ts';

export type IdmapSupport = { supported: true } | { supported: false; reason: string };

// Per st_dev: the reason is written for the path asked about, not the first one probed there.
const cache = new Map<number, (target: string) => IdmapSupport>();
const SUPPORTED: IdmapSupport = Object.freeze({ supported: true });

/** Cached per st_dev for the life of the process. */
export function probeIdmapSupport(target: string): IdmapSupport {
  let dev: number;
  try {
    dev = statSync(target).dev;
  } catch (err) {
    return { supported: false, reason: `cannot probe idmapped mount support at ${target}: ${fromNodeError(err, 'stat', target).message}` };
  }
  let result = cache.get(dev);
  if (!result) {
    result = probe(target);
    cache.set(dev, result);
  }
  return result(target);
}

function probe(probed: string): (target: string) => IdmapSupport {
  let treeFd: number;
  try {
    treeFd = openTreeClone(probed);
  } catch (err) {
    const why = describe(err);
    return (target) => ({ supported: false, reason: `cannot probe idmapped mount support at ${target}: ${why}` });
  }
  const c = libc();
  let usernsFd = -1;
  try {
    usernsFd = createUserNamespaceFd([{ containerID: 0, hostID: 100000, size: 65536 }], [{ containerID: 0, hostID: 100000, size: 65536 }]);
    setIdmap(treeFd, usernsFd, { label: probed });
    return () => SUPPORTED;
  } catch (err) {
    const why = err instanceof SyscallError && err.syscall === 'mount_setattr'
      ? { fs: fsTypeAt(probed), code: err.code }
      : { error: describe(err).replaceAll(probed, '<path>') };
    return (target) => ({
      supported: false,
      reason: 'fs' in why
        ? `idmapped mounts not supported by filesystem ${why.fs} at ${target}: ${why.code}`
        : `cannot probe idmapped mount support at ${target}: ${why.error.replaceAll('<path>', target)}`,
    });
  } finally {
    if (usernsFd >= 0) c.close(usernsFd);
    c.close(treeFd);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
