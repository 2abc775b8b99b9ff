// Can the filesystem under a path be idmapped? Answered by trying: a detached
// clone of the path's mount is idmapped with a throwaway user namespace and
// dropped again without ever being attached.
import { statSync } from 'node:fs';
import { SyscallError, fromNodeError, libc } from './libc.ts';
import { fsTypeAt, openTreeClone, setIdmap } from './mount.ts';
import { createUserNamespaceFd } from './userns.ts';

export type IdmapSupport = { supported: true } | { supported: false; reason: string };

const cache = new Map<number, IdmapSupport>();

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
  return result;
}

function probe(target: string): IdmapSupport {
  let treeFd: number;
  try {
    treeFd = openTreeClone(target);
  } catch (err) {
    return { supported: false, reason: `cannot probe idmapped mount support at ${target}: ${describe(err)}` };
  }
  const c = libc();
  let usernsFd = -1;
  try {
    usernsFd = createUserNamespaceFd([{ containerID: 0, hostID: 100000, size: 65536 }], [{ containerID: 0, hostID: 100000, size: 65536 }]);
    setIdmap(treeFd, usernsFd, { label: target });
    return { supported: true };
  } catch (err) {
    if (!(err instanceof SyscallError) || err.syscall !== 'mount_setattr') {
      return { supported: false, reason: `cannot probe idmapped mount support at ${target}: ${describe(err)}` };
    }
    return { supported: false, reason: `idmapped mounts not supported by filesystem ${fsTypeAt(target)} at ${target}: ${err.code}` };
  } finally {
    if (usernsFd >= 0) c.close(usernsFd);
    c.close(treeFd);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
