// A file system outlives the unmount of its last mount point while anything still holds it: a copy
// of the mount in another mount namespace, a file or working directory open in it, a path lookup
// in flight (then the last holder tears it down when it lets go, in its own time). Overlayfs marks
// an upper and work dir "in use" for as long as its superblock lives, and an overlay mounted over
// them meanwhile is a second live one (the kernel warns "upperdir is in-use"). An inotify watch on
// the file system's root holds none of that, and the kernel tells it when the superblock goes
// (IN_UNMOUNT, then IN_IGNORED): the manager mounts the incoming overlay of a swap once the
// outgoing one is gone (manager/ownership/engine-overlay.ts).
//
// All watches share one inotify instance, opened at the first and kept: instances are limited per
// user (fs.inotify.max_user_instances, 128 by default, shared with every other root process), and
// a create must not fail because other programs used them up.
import { readSync } from 'node:fs';
import { lastErrno, libc, pollfdsIn, sysFail } from './libc.ts';

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
const IN_DELETE_SELF = 0x400;
const IN_IGNORED = 0x8000;
const IN_ONLYDIR = 0x1000000;
const IN_DONT_FOLLOW = 0x2000000;
const EINTR = 4;
/** struct inotify_event: int wd; uint32 mask, cookie, len; char name[len]. */
const EVENT_HEADER = 16;

/**
 * The shared instance, the descriptors of its open watches and those of them whose superblock went
 * (wds are not reused until they wrap around).
 */
let instance: { readonly fd: number; readonly open: Set<number>; readonly gone: Set<number> } | undefined;

function sharedInstance(): NonNullable<typeof instance> {
  if (instance) return instance;
  const fd = libc().inotifyInit1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd === -1) throw sysFail('inotify_init1');
  instance = { fd, open: new Set(), gone: new Set() };
  return instance;
}

/** Reads every queued event, marking the watches whose superblock went. */
function drainEvents(): void {
  const inst = sharedInstance();
  const buf = Buffer.alloc(4096);
  for (;;) {
    let n: number;
    try {
      n = readSync(inst.fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
      throw err;
    }
    for (let at = 0; at + EVENT_HEADER <= n; at += EVENT_HEADER + buf.readUInt32LE(at + 12)) {
      // IN_UNMOUNT comes first, but IN_IGNORED always follows it: the watch is gone with it.
      const wd = buf.readInt32LE(at);
      if ((buf.readUInt32LE(at + 4) & IN_IGNORED) !== 0 && inst.open.has(wd)) inst.gone.add(wd);
    }
  }
}

/** The superblock of the file system mounted at a directory, watched until it goes. */
export class SuperblockWatch {
  private closed = false;

  private constructor(private readonly wd: number) {}

  /** Watches the file system whose root is mounted at mountRoot; set it before the unmount. */
  static of(mountRoot: string): SuperblockWatch {
    const inst = sharedInstance();
    // Any event bit will do: IN_UNMOUNT and IN_IGNORED come unasked.
    const wd = libc().inotifyAddWatch(inst.fd, mountRoot, IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd === -1) throw sysFail('inotify_add_watch', mountRoot);
    // One inode watched twice would share a descriptor; a swap watches one outgoing overlay at a time.
    inst.open.add(wd);
    return new SuperblockWatch(wd);
  }

  /** Whether the superblock is gone, waiting up to timeoutMs for it (0: only looks). */
  waitGone(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      drainEvents();
      if (sharedInstance().gone.has(this.wd)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (libc().poll(pollfdsIn([sharedInstance().fd]), 1, left) === -1 && lastErrno() !== EINTR) throw sysFail('poll', 'inotify');
    }
  }

  /** Stops watching (a watch not yet gone is removed; its IN_IGNORED is then nobody's); again: nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const inst = sharedInstance();
    inst.open.delete(this.wd);
    if (!inst.gone.delete(this.wd)) libc().inotifyRmWatch(inst.fd, this.wd); // EINVAL if it went meanwhile: fine
  }
}
