// Exactly one overlay writes to a container's upper dir (issue 25). The engine (dockerd's overlay2,
// containerd's overlayfs snapshotter, podman's containers/storage) has its own overlay of the
// container's layers mounted at its rootfs path. sysrunc's overlay (idmapped layers, or the clone)
// uses the same upper and work dirs, and overlayfs cannot be idmapped itself, so the two views
// cannot both be live: the engine's overlay is unmounted just before sysrunc's is made, and
// sysrunc's is attached at the engine's path in its place. The engine's operations on a running
// container (docker cp, export, podman cp...) then go through the container's own file system.
// An unmount is not the end of an overlay: whatever still holds it (a copy in another mount
// namespace, an open file, a lookup in flight) keeps it live, so the incoming overlay of a swap is
// mounted only once the outgoing one's superblock is gone (host/superblock-watch.ts).
import { rmdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { unmount, bindMount, isMountPoint } from '../../host/mount.ts';
import { topOverlayAt, type OverlayMount } from '../../host/overlay-mountinfo.ts';
import { lowerdirSupport, mountOverlay } from '../../host/overlay-mount.ts';
import { SuperblockWatch } from '../../host/superblock-watch.ts';
import { SyscallError } from '../../host/libc.ts';

/** The engine's overlay as the transform saw it (see HostAction's replaces). */
export interface EngineOverlayRef {
  /** The engine's rootfs path (its overlay's mount point). */
  readonly mountpoint: string;
  readonly lowerdirs: readonly string[];
  /** The upper dir that overlay must have (resolved): the check that it is the container's. */
  readonly upperdir: string;
  readonly workdir: string;
  /** As in overlay-mount: '' is a flag. */
  readonly options: Readonly<Record<string, string>>;
}

export class EngineOverlayError extends Error {
  override readonly name = 'EngineOverlayError';
}

/** How long the incoming overlay of a swap waits for the outgoing one to go before it is mounted anyway. */
export const OUTGOING_OVERLAY_WAIT_MS = 2000;

/** An outgoing overlay that was still live when the incoming one was due (see OverlaySwap.held). */
export interface HeldOverlay {
  /** The engine's path the swap is at. */
  readonly mountpoint: string;
  /** Whose overlay was going: the engine's at create, sysrunc's at delete. */
  readonly outgoing: 'engine' | 'sysrunc';
  readonly waitedMs: number;
  /** False: it outlived the wait, and the incoming overlay was mounted beside it. */
  readonly gone: boolean;
}

/** How a swap over one upper dir is fenced (host-executor.ts gives the manager's). */
export interface OverlaySwap {
  /** Runs fn holding the run base's mount-namespace lock (host/mount-ns-lock.ts). */
  underLock(fn: () => void): void;
  /** Told when something outside sysrunc still held the outgoing overlay. */
  held(report: HeldOverlay): void;
  /** Told when the kernel's inotify limits left no watch for the outgoing overlay (then no wait). */
  unwatched(report: { readonly mountpoint: string; readonly outgoing: HeldOverlay['outgoing']; readonly reason: string }): void;
  /** Default OUTGOING_OVERLAY_WAIT_MS. */
  readonly goneWithinMs?: number;
}

/**
 * The overlay on top at the engine's path, asked of that mount alone (no read of every mount on
 * the host where the kernel has statmount). dockerd mounts long layer lists relative to its
 * overlay2 dir, which holds <id>/merged.
 */
function parseEngineOverlay(mountpoint: string): OverlayMount {
  return topOverlayAt(mountpoint, { baseDir: path.dirname(path.dirname(mountpoint)) });
}

function isVolatile(options: Readonly<Record<string, string | true>>): boolean {
  // Older kernels show the flag, newer ones fsync=volatile.
  return options['volatile'] !== undefined || options['fsync'] === 'volatile';
}

/**
 * Unmounts the engine's overlay at ref.mountpoint after checking it is an overlay over ref.upperdir.
 * A volatile overlay leaves work/incompat/volatile behind, which makes the kernel refuse any later
 * overlay over that work dir; it is removed here, as the kernel's documentation allows when the
 * system has not crashed since (the engine mounted it moments ago). Returns a watch on the
 * unmounted overlay for the swap's wait (none when inotify's limits leave none).
 */
export function detachEngineOverlay(ref: EngineOverlayRef, swap: OverlaySwap): SuperblockWatch | undefined {
  let overlay: OverlayMount;
  try {
    overlay = parseEngineOverlay(ref.mountpoint);
  } catch (err) {
    throw new EngineOverlayError(`the engine's rootfs ${ref.mountpoint}: ${(err as Error).message}`);
  }
  if (overlay.upperdir === undefined || path.resolve(overlay.upperdir) !== ref.upperdir) {
    throw new EngineOverlayError(`the overlay at ${ref.mountpoint} has upper dir ${overlay.upperdir ?? '(none)'}, not ${ref.upperdir}: not the container's`);
  }
  const outgoing = watchOutgoing(ref.mountpoint, 'engine', ref.mountpoint, swap);
  try {
    unmount(ref.mountpoint, { detach: true });
    if (overlay.workdir !== undefined && isVolatile(overlay.options)) clearVolatileMarker(overlay.workdir);
  } catch (err) {
    outgoing?.close();
    throw err;
  }
  return outgoing;
}

/** inotify's per-user limits, used up by other programs: a swap goes on without its wait rather than fail. */
const INOTIFY_LIMITS = new Set(['ENOSPC', 'EMFILE', 'ENFILE', 'ENOMEM']);

/** A watch on the overlay whose root is at mountRoot, set before it is unmounted; none when inotify's limits leave none. */
function watchOutgoing(mountRoot: string, outgoing: HeldOverlay['outgoing'], mountpoint: string, swap: OverlaySwap): SuperblockWatch | undefined {
  try {
    return SuperblockWatch.of(mountRoot);
  } catch (err) {
    if (!(err instanceof SyscallError) || !INOTIFY_LIMITS.has(err.code)) throw err;
    swap.unwatched({ mountpoint, outgoing, reason: err.message });
    return undefined;
  }
}

/** Returns once the outgoing overlay is gone, or after the swap's wait; either way tells swap.held when it was not gone at once. */
function awaitGone(outgoing: SuperblockWatch | undefined, whose: HeldOverlay['outgoing'], mountpoint: string, swap: OverlaySwap): void {
  if (outgoing === undefined || outgoing.waitGone(0)) return;
  const start = performance.now();
  const gone = outgoing.waitGone(swap.goneWithinMs ?? OUTGOING_OVERLAY_WAIT_MS);
  // The event comes from the middle of the superblock's teardown, in the task that let it go last;
  // overlayfs drops its upper dir's in-use mark at the end of that teardown, and nothing tells of
  // it. Where that task is another's (a wait here), a moment's grace keeps the incoming overlay
  // from meeting the mark (the kernel's "upperdir is in-use" warning, seen once in CI among 50
  // concurrent docker runs). Our own unmount's teardown ends before umount2 returns: no grace then.
  if (gone) Atomics.wait(GRACE_CELL, 0, 0, TEARDOWN_GRACE_MS);
  swap.held({ mountpoint, outgoing: whose, waitedMs: Math.round(performance.now() - start), gone });
}

/** How long a swap waits after another task's teardown of the outgoing overlay was seen to begin (ms). */
const TEARDOWN_GRACE_MS = 10;
/** A cell nobody notifies: Atomics.wait on it is a plain sleep of the manager's thread. */
const GRACE_CELL = new Int32Array(new SharedArrayBuffer(4));

export function clearVolatileMarker(workdir: string): void {
  const volatile = path.join(workdir, 'work', 'incompat', 'volatile');
  for (const [remove, p] of [[unlinkSync, path.join(volatile, 'dirty')], [rmdirSync, volatile], [rmdirSync, path.dirname(volatile)]] as const) {
    try {
      remove(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Mounts the engine's overlay at its path again, as it was: when sysrunc's could not be made, and
 * at delete when sysrunc's was still there (the engine has not unmounted its path: it may start
 * the container again without mounting, as dockerd's restart does).
 */
export function restoreEngineOverlay(ref: EngineOverlayRef): void {
  if (isMountPoint(ref.mountpoint)) return;
  if (isVolatile(ref.options)) clearVolatileMarker(ref.workdir);
  const layers = { lowerdirs: ref.lowerdirs, upperdir: ref.upperdir, workdir: ref.workdir, options: ref.options };
  mountOverlay(ref.mountpoint, layers, lowerdirSupport().syntax, path.dirname(path.dirname(ref.mountpoint)));
}

/**
 * mountOwn mounts sysrunc's overlay at ownTarget; with ref, the engine's overlay is unmounted just
 * before (never two live overlays over one upper dir: mountOwn runs under the swap's lock once the
 * engine's is gone) and sysrunc's is attached at the engine's path after: one file system at two
 * paths. If sysrunc's cannot be made, the engine's comes back, the same way. Without ref there is
 * no swap.
 */
export function replaceEngineOverlay(ref: EngineOverlayRef | undefined, ownTarget: string, mountOwn: () => void, swap: OverlaySwap): void {
  if (ref === undefined) return mountOwn();
  const engines = detachEngineOverlay(ref, swap);
  let ours: SuperblockWatch | undefined;
  try {
    swap.underLock(() => {
      awaitGone(engines, 'engine', ref.mountpoint, swap);
      mountOwn();
    });
    bindMount(ownTarget, ref.mountpoint, { recursive: false });
  } catch (err) {
    try {
      if (isMountPoint(ownTarget)) ours = watchOutgoing(ownTarget, 'sysrunc', ref.mountpoint, swap);
      for (let i = 0; i < 16 && isMountPoint(ownTarget); i++) unmount(ownTarget, { detach: true });
      swap.underLock(() => {
        awaitGone(ours, 'sysrunc', ref.mountpoint, swap);
        restoreEngineOverlay(ref);
      });
    } catch (restoreErr) {
      throw new EngineOverlayError(`${describe(err)}; the engine's overlay at ${ref.mountpoint} could not be mounted again: ${describe(restoreErr)}`);
    }
    throw err;
  } finally {
    engines?.close();
    ours?.close();
  }
}

/**
 * After sysrunc's overlay left the engine's path (releaseEnginePath's watch on it): once it is
 * gone, `between` (what must see no overlay over the upper dir), then the engine's overlay again,
 * both under the swap's lock.
 */
export function returnEngineOverlay(ref: EngineOverlayRef, ours: SuperblockWatch | undefined, swap: OverlaySwap, between: () => void): void {
  swap.underLock(() => {
    awaitGone(ours, 'sysrunc', ref.mountpoint, swap);
    between();
    restoreEngineOverlay(ref);
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * At delete: unmounts sysrunc's overlay from the engine's path, and only sysrunc's: one whose
 * upper dir is inside the run dir (idmap mode) or whose lower layer is the container's clone
 * (clone mode). The engine's own overlay, mounted again for a restart, is never touched.
 * released: sysrunc's was there; ours: a watch on it (returnEngineOverlay waits for it to go),
 * which the caller closes.
 */
export function releaseEnginePath(mountpoint: string, isOurs: (overlay: OverlayMount) => boolean, swap: OverlaySwap): { released: boolean; ours?: SuperblockWatch } {
  let released = false;
  let ours: SuperblockWatch | undefined;
  try {
    for (let i = 0; i < 16; i++) {
      // Not a mount point, not an overlay, or options sysrunc cannot read: not sysrunc's.
      let overlay: OverlayMount;
      try {
        overlay = parseEngineOverlay(mountpoint);
      } catch {
        break;
      }
      if (!isOurs(overlay)) break;
      if (!released) ours = watchOutgoing(mountpoint, 'sysrunc', mountpoint, swap);
      released = true;
      unmount(mountpoint, { detach: true });
    }
  } catch (err) {
    ours?.close();
    throw err;
  }
  return ours === undefined ? { released } : { released, ours };
}

export function insideDir(dir: string, p: string | undefined): boolean {
  if (p === undefined) return false;
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
