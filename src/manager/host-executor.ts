// Carries out and undoes host actions for the manager, through the syscall layer in src/host.
// Every undo is idempotent: it may run for an action that was recorded but never completed.
import { closeSync, lstatSync, mkdirSync, openSync, rmdirSync, unlinkSync, chownSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { delegateCgroups, undelegateCgroups } from './cgroup-delegate.ts';
import { readdirIfExists } from '../common/read-dir.ts';
import type { HostAction, IdMapping } from '../manager-api/v1.ts';
import { bindMountFd, idmappedBindMountFd, isMountPoint, makePrivate, unmount } from '../host/mount.ts';
import { withPinnedPath, type PinnedPath } from '../host/pinned-path.ts';
import { lowerdirSupport, mountOverlay } from '../host/overlay-mount.ts';
import type { OverlayMount } from '../host/overlay-mountinfo.ts';
import { insideDir, releaseEnginePath, replaceEngineOverlay, returnEngineOverlay, type EngineOverlayRef, type HeldOverlay, type OverlaySwap } from './ownership/engine-overlay.ts';
import { withMountNamespaceLock } from '../host/mount-ns-lock.ts';
import { UsernsFds } from './userns-fds.ts';
import { chownTreeByOffset, resumeInterruptedChown, type ChownDirection, type IdOffset } from './ownership/chown-tree.ts';
import type { RootfsCloner } from './ownership/rootfs-cloner.ts';
import { makeMountPoints } from './ownership/mount-points.ts';

export interface ContainerContext {
  readonly id: string;
  readonly runDir: string;
  readonly uidMappings: readonly IdMapping[];
  readonly gidMappings: readonly IdMapping[];
}

export class HostActionError extends Error {
  override readonly name = 'HostActionError';
}

export interface HostExecutorOptions {
  readonly cloner: RootfsCloner;
  /** Crash journals of in-place chowns (chown-tree actions), one per container and path. */
  readonly journalDir: string;
  /**
   * Runs long work that touches only one container's files outside the manager's request queue
   * (SerialQueue.unlocked); default: in line.
   */
  readonly offQueue?: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * A container's store volumes kept in its layer go beside it while sysrunc's rootfs overlay is
   * over the upper dir (volumes/beside-layer.ts): moved out right before that overlay is mounted,
   * back right after it is gone and before the engine's own overlay is mounted again.
   */
  readonly storeVolumes?: StoreVolumeHooks;
  /**
   * The manager's run base: the incoming overlay of a swap over one upper dir is mounted holding
   * its mount-namespace lock (host/mount-ns-lock.ts), so no runc namespace still holds a copy of
   * the outgoing one. Unset (unit tests): no lock.
   */
  readonly runBase?: string;
  /** Told when an overlay swap found the outgoing overlay still held by something else (logged). */
  readonly overlayHeld?: (id: string, report: HeldOverlay) => void;
  /** Told when inotify's limits left an overlay swap without its wait (logged). */
  readonly overlayUnwatched?: (id: string, report: Parameters<OverlaySwap['unwatched']>[0]) => void;
}

export interface StoreVolumeHooks {
  leaveLayer(id: string): void;
  returnToLayer(id: string): void;
}

// Host trees a bind mount may name but sysrunc never re-owns: the container would own the host's
// system files while it runs. Docker's own per-container files live under /var/lib/docker.
const NEVER_CHOWNED = ['/etc', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/boot', '/proc', '/sys', '/dev'];

// <id>.<16 hex digits of the path's sha256>.json
const JOURNAL_SUFFIX_LENGTH = '.0123456789abcdef.json'.length;

export class HostExecutor {
  /** User-namespace fds carrying containers' mappings for idmapped mounts (shared by mapping). */
  private readonly usernsFds = new UsernsFds();

  constructor(private readonly o: HostExecutorOptions) {}

  /** How this container's overlay swaps are fenced (engine-overlay.ts). */
  private swap(ctx: ContainerContext): OverlaySwap {
    return {
      underLock: (fn) => underSwapLock(this.o.runBase, fn),
      held: (report) => this.o.overlayHeld?.(ctx.id, report),
      unwatched: (report) => this.o.overlayUnwatched?.(ctx.id, report),
    };
  }

  /** Only rootfs-clone does asynchronous work (the clone's chown); the rest is done on return. */
  perform(ctx: ContainerContext, action: HostAction): void | Promise<void> {
    switch (action.kind) {
      case 'idmapped-mount':
        return this.idmappedMount(ctx, action);
      case 'bind-mount':
        return bindMountAction(ctx, action);
      case 'overlay-mount':
        return overlayMount(ctx, action, this.o.storeVolumes, this.swap(ctx));
      case 'rootfs-clone':
        return this.rootfsClone(ctx, action);
      case 'chown-tree':
        return this.chownTree(ctx, action.path, 'shift');
      case 'cgroup-delegate':
        return delegateCgroups(action.dirs, containerRoot(ctx));
      case 'mount-points':
        return makeMountPoints(action);
    }
  }

  /**
   * With `leaveTargets`, the mount points of sysrunc's overlay and clone are unmounted but left in
   * the run dir (empty): a release that finishes the run dir later (release-record.ts) saves the
   * rmdir on the engine's side.
   */
  undo(ctx: ContainerContext, action: HostAction, o: { leaveTargets?: boolean } = {}): void {
    const clearTarget = o.leaveTargets === true ? unmountTarget : undoMountTarget;
    switch (action.kind) {
      case 'idmapped-mount':
      case 'bind-mount':
        return undoMountTarget(ctx, action.target);
      case 'overlay-mount': {
        // Only an overlay whose upper dir is in this run dir is sysrunc's (idmapped upper view).
        return this.handBack(ctx, action.replaces, (m) => insideDir(ctx.runDir, m.upperdir), () => clearTarget(ctx, action.target), () => this.o.storeVolumes?.returnToLayer(ctx.id));
      }
      case 'rootfs-clone': {
        const clone = this.o.cloner.mergedPath(ctx.id);
        return this.handBack(ctx, action.replaces, (m) => m.lowerdirs.length === 1 && m.lowerdirs[0] === clone, () => clearTarget(ctx, action.target), () => {
          // docker commit, docker cp and docker diff read the upper dir of a stopped container.
          this.o.cloner.chownUpper(ctx.id, action.upperdir, idOffset(ctx), rangeSize(ctx), 'revert', action.keepOwnership);
          this.o.cloner.unmountClone(ctx.id);
        });
      }
      case 'chown-tree':
        return this.chownTree(ctx, action.path, 'revert');
      case 'cgroup-delegate':
        return undelegateCgroups(action.dirs);
      case 'mount-points':
        // They stay in the container's layer, as runc's own do.
        return;
    }
  }

  /**
   * The end of an overlay's undo. With a swap (engine), sysrunc's overlay (isOurs tells it) leaves
   * the engine's path first. clearTarget unmounts it from the run dir; then, once it is gone,
   * `between` and the engine's overlay again (engine-overlay.ts's returnEngineOverlay).
   */
  private handBack(ctx: ContainerContext, engine: EngineOverlayRef | undefined, isOurs: (overlay: OverlayMount) => boolean, clearTarget: () => void, between: () => void): void {
    const swap = this.swap(ctx);
    const back = engine && releaseEnginePath(engine.mountpoint, isOurs, swap);
    try {
      clearTarget();
      if (engine !== undefined && back?.released === true) returnEngineOverlay(engine, back.ours, swap, between);
      else between();
    } finally {
      back?.ours?.close();
    }
  }

  /**
   * After a manager restart: rolls back in-place chowns that a container no record knows was in
   * the middle of, and removes clones nobody owns. Returns what it did, one line each.
   */
  reconcile(known: ReadonlySet<string>): string[] {
    const done: string[] = [];
    for (const name of readdirIfExists(this.o.journalDir)) {
      const id = name.slice(0, -JOURNAL_SUFFIX_LENGTH);
      if (!name.endsWith('.json') || known.has(id)) continue;
      resumeInterruptedChown(path.join(this.o.journalDir, name), { action: 'rollback' });
      done.push(`rolled back an interrupted chown of container ${id} that has no record`);
    }
    this.o.cloner.emptyTrash();
    for (const id of this.o.cloner.list()) {
      if (known.has(id)) continue;
      this.o.cloner.removeClone(id);
      done.push(`removed the rootfs clone of container ${id} that has no record`);
    }
    return done;
  }

  /** Removes what outlives a stop (the rootfs clone), once the container itself is removed. */
  discard(id: string): void {
    this.o.cloner.removeClone(id);
  }

  private async rootfsClone(ctx: ContainerContext, action: Extract<HostAction, { kind: 'rootfs-clone' }>): Promise<void> {
    assertInside(ctx.runDir, action.target);
    for (const dir of [...action.lowerdirs, action.upperdir, action.workdir]) lstatNoSymlink(dir, 'rootfs clone');
    const offset = idOffset(ctx);
    const size = rangeSize(ctx);
    const mount = () => this.o.cloner.mountClone({ id: ctx.id, lowerdirs: action.lowerdirs, offset, size });
    const clone = await (this.o.offQueue ? this.o.offQueue(mount) : mount());
    this.o.cloner.chownUpper(ctx.id, action.upperdir, offset, size, 'shift', action.keepOwnership);
    undoMountTarget(ctx, action.target);
    makeParents(ctx, path.dirname(action.target));
    mkdirSync(action.target, { mode: 0o700 });
    const layers = { lowerdirs: [clone.merged], upperdir: action.upperdir, workdir: action.workdir, options: action.options };
    replaceEngineOverlay(action.replaces, action.target, () => {
      mountOverlay(action.target, layers, lowerdirSupport().syntax);
      makePrivate(action.target);
    }, this.swap(ctx));
  }

  /**
   * The source is pinned (opened once, no symlink in any component): the host-system check is
   * made on what the fd really is, and the walk starts from that fd, so a parent directory swapped
   * for a symlink to / after the path was resolved is refused, never followed.
   */
  private chownTree(ctx: ContainerContext, target: string, direction: ChownDirection): void {
    refuseHostSystemPath(ctx, target);
    const journal = path.join(this.o.journalDir, `${ctx.id}.${createHash('sha256').update(target).digest('hex').slice(0, 16)}.json`);
    withPinnedPath(target, `chown for container ${ctx.id}`, (source) => {
      refuseHostSystemPath(ctx, source.real);
      mkdirSync(this.o.journalDir, { recursive: true, mode: 0o700 });
      chownTreeByOffset(source.real, idOffset(ctx), { journalPath: journal, direction, range: { size: rangeSize(ctx) }, rootFd: source.fd });
    });
  }

  /** Drops what the executor holds for a container (its use of user-namespace fds). */
  forget(id: string): void {
    this.usernsFds.release(id);
  }

  private idmappedMount(ctx: ContainerContext, action: Extract<HostAction, { kind: 'idmapped-mount' }>): void {
    withPinnedPath(action.source, 'idmapped mount', (source) => {
      prepareMountTarget(ctx, action.target, source);
      const usernsFd = this.usernsFd(ctx, action.mounterWritable === true);
      idmappedBindMountFd({ fd: source.fd, label: action.source }, action.target, usernsFd, { recursive: action.recursive, readOnly: action.readOnly === true });
    });
  }

  private usernsFd(ctx: ContainerContext, mounterWritable: boolean): number {
    const uid = mounterWritable ? withHostRootSpare(ctx.uidMappings) : ctx.uidMappings;
    const gid = mounterWritable ? withHostRootSpare(ctx.gidMappings) : ctx.gidMappings;
    return this.usernsFds.get(ctx.id, uid, gid);
  }
}

/** The mapping plus host id 0 at the first id above every container id (on disk: overlay internals). */
export function withHostRootSpare(mappings: readonly IdMapping[]): IdMapping[] {
  const spare = Math.max(...mappings.map((m) => m.containerID + m.size));
  return [...mappings, { containerID: spare, hostID: 0, size: 1 }];
}

/**
 * The source is pinned once (no symlink in any component, see host/pinned-path.ts) and mounted
 * from that fd: a parent directory swapped for a symlink after the facts were gathered is refused.
 */
function bindMountAction(ctx: ContainerContext, action: Extract<HostAction, { kind: 'bind-mount' }>): void {
  withPinnedPath(action.source, 'bind mount', (source) => {
    prepareMountTarget(ctx, action.target, source);
    bindMountFd({ fd: source.fd, label: action.source }, action.target, { recursive: action.recursive, readOnly: action.readOnly === true });
  });
}

/** An empty file or dir at target, matching the pinned source. */
function prepareMountTarget(ctx: ContainerContext, target: string, source: PinnedPath): void {
  assertInside(ctx.runDir, target);
  undoMountTarget(ctx, target);
  makeParents(ctx, path.dirname(target));
  if (source.stat.isDirectory()) mkdirSync(target, { mode: 0o700 });
  else closeSync(openSync(target, 'wx', 0o600));
}

function refuseHostSystemPath(ctx: ContainerContext, p: string): void {
  if (p === '/' || NEVER_CHOWNED.some((dir) => p === dir || p.startsWith(`${dir}/`))) {
    throw new HostActionError(`refusing to chown ${p} for container ${ctx.id}: it is a host system path; mount it read-only, or use idmapped mounts`);
  }
}

function overlayMount(ctx: ContainerContext, action: Extract<HostAction, { kind: 'overlay-mount' }>, stores: StoreVolumeHooks | undefined, swap: OverlaySwap): void {
  assertInside(ctx.runDir, action.target);
  for (const dir of [...action.lowerdirs, action.upperdir, action.workdir]) {
    if (dir !== undefined) assertInside(ctx.runDir, dir);
  }
  undoMountTarget(ctx, action.target);
  makeParents(ctx, path.dirname(action.target));
  mkdirSync(action.target, { mode: 0o700 });
  replaceEngineOverlay(action.replaces, action.target, () => {
    // The engine's overlay is gone, sysrunc's not there yet: no overlay is over the upper dir.
    stores?.leaveLayer(ctx.id);
    try {
      // Legacy syntax: the layers are named relative to the run dir, to fit one page.
      mountOverlay(action.target, action, lowerdirSupport().syntax, ctx.runDir);
      makePrivate(action.target);
    } catch (err) {
      while (isMountPoint(action.target)) unmount(action.target, { detach: true });
      stores?.returnToLayer(ctx.id);
      throw err;
    }
  }, swap);
}

/** fn under the run base's mount-namespace lock (HostExecutorOptions.runBase); unset: fn alone. */
function underSwapLock(runBase: string | undefined, fn: () => void): void {
  if (runBase === undefined) fn();
  else withMountNamespaceLock(runBase, fn);
}

/** Unmounts whatever is stacked on the target and removes it; never recursive. */
export function undoMountTarget(ctx: ContainerContext, target: string): void {
  unmountTarget(ctx, target);
  const stat = lstatSync(target, { throwIfNoEntry: false });
  if (stat === undefined) return;
  if (stat.isDirectory()) rmdirSync(target);
  else unlinkSync(target);
}

/** Unmounts whatever is stacked on the target, which stays. */
function unmountTarget(ctx: ContainerContext, target: string): void {
  assertInside(ctx.runDir, target);
  while (isMountPoint(target)) unmount(target, { detach: true });
}

/** Intermediate dirs under the run dir belong to the container's root so runc can traverse them. */
function makeParents(ctx: ContainerContext, dir: string): void {
  if (dir === ctx.runDir) return;
  assertInside(ctx.runDir, dir);
  makeParents(ctx, path.dirname(dir));
  // recursive: an existing dir is no error (undefined), so the targets after the first in a
  // directory throw nothing; the parents exist already, so at most dir itself is made.
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) === undefined) return;
  const root = containerRoot(ctx);
  chownSync(dir, root.uid, root.gid);
}

/** lstat of a path sysrunc is about to act on, which must not be a symlink. */
function lstatNoSymlink(p: string, what: string): Stats {
  let st;
  try {
    st = lstatSync(p);
  } catch (err) {
    throw new HostActionError(`${what} of ${p}: lstat: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (st.isSymbolicLink()) throw new HostActionError(`${what} of ${p}: it is a symlink; refusing to follow it`);
  return st;
}

/** In-place ownership needs one contiguous mapping from container id 0: a plain offset. */
function idOffset(ctx: ContainerContext): IdOffset {
  if (ctx.uidMappings.length !== 1 || ctx.gidMappings.length !== 1) {
    throw new HostActionError(`container ${ctx.id}: changing ownership on disk needs exactly one uid and one gid mapping`);
  }
  return containerRoot(ctx);
}

function rangeSize(ctx: ContainerContext): number {
  return Math.min(ctx.uidMappings[0]?.size ?? 0, ctx.gidMappings[0]?.size ?? 0);
}

export function containerRoot(ctx: Pick<ContainerContext, 'uidMappings' | 'gidMappings'>): { uid: number; gid: number } {
  const uid = ctx.uidMappings.find((m) => m.containerID === 0)?.hostID;
  const gid = ctx.gidMappings.find((m) => m.containerID === 0)?.hostID;
  if (uid === undefined || gid === undefined) throw new HostActionError('the user namespace does not map container root');
  return { uid, gid };
}

function assertInside(dir: string, target: string): void {
  const rel = path.relative(dir, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new HostActionError(`host action target ${target} is outside the container's run dir ${dir}`);
  }
}
