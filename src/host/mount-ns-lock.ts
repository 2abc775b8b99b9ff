// The moment one overlay over a container's upper dir gives way to the other (the engine's to
// sysrunc's at create, sysrunc's back to the engine's at delete), no other mount namespace may hold
// a copy of the outgoing one: a copy keeps its superblock alive, and the incoming overlay would be
// a second live one over that upper dir ("upperdir is in-use" in the kernel log; issue 25). The
// copies come from runc's own mount namespace (dist/sysrunc-bundle-exec unshares, then detaches
// every other container's overlay in it): it holds this lock shared from its unshare until that
// detach is done, and the manager holds it exclusively around each swap. The file is
// <runBase>/mount-ns.lock; both sides find it from the run base. Other holders (an open file, a
// lookup in flight) are outside any lock: the manager also waits for the outgoing overlay's
// superblock to go before it mounts the incoming one (host/superblock-watch.ts).
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { libc, sysFail } from './libc.ts';

const LOCK_EX = 2;
export const MOUNT_NS_LOCK_FILE = 'mount-ns.lock';

/** Runs fn holding the run base's mount-namespace lock exclusively (blocks while a runc copies). */
export function withMountNamespaceLock<T>(runBase: string, fn: () => T): T {
  const file = path.join(runBase, MOUNT_NS_LOCK_FILE);
  const fd = openSync(file, 'a', 0o600);
  try {
    if (libc().flock(fd, LOCK_EX) !== 0) throw sysFail('flock', file);
    return fn();
  } finally {
    // Closing the only descriptor releases the lock.
    closeSync(fd);
  }
}
