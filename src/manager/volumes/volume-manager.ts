// Store volumes: a host directory per container and store path (/var/lib/docker, ...) bind-mounted
// over that path, so inner container engines get a real filesystem instead of the container's
// overlayfs rootfs. The volume holds host ids (container range), so it needs no idmapped mount;
// the image's content is copied in at first create and copied back into the rootfs at stop.
//
// Safety of the sync targets: sync-out writes through the rootfs path the caller gives (Docker's
// overlay merged dir, still mounted when the runtime deletes the container), never into an
// overlay upperdir behind a mounted overlay's back: that is undefined behaviour for overlayfs,
// and Docker commits from the upperdir while the container is stopped, so a late or racy write
// there would corrupt the committed layer. The ids are shifted by the kernel: one side of every
// copy is an idmapped view of the volume (shift-view.ts). What overlayfs or Docker's layer format
// cannot carry (whiteouts, most xattrs) goes into a sidecar file next to the tree (sidecar.ts).
import { chownSync, closeSync, constants as fsConstants, lstatSync, mkdirSync, readdirSync, renameSync, statfsSync, unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { readJson, writeJsonAtomic, writeFileAtomic } from '../state-file.ts';
import { mountsUnder, unmount } from '../../host/mount.ts';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { copyTree, type CopyStats, type Whiteout } from './copy-tree.ts';
import { VolumeError, describe } from './errors.ts';
import { Rootfs, withRootfs } from './in-root.ts';
import { O_PATH, S_IFDIR, S_IFMT, type Stat, type Xattrs } from '../../host/fs-native.ts';
import { Sidecar, SidecarWriter, sidecarName } from './sidecar.ts';
import { isSameOrBelow } from './store-paths.ts';
import { withUnshiftedView, type IdRange } from './shift-view.ts';

export const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
export const DEFAULT_ID_RANGE_SIZE = 65536;
const MAX_SIDECAR_BYTES = 256 * 1024 * 1024;
const MOUNT_OPTIONS = ['rbind', 'rprivate'];

const VolumeRecord = z.object({
  /** In-container path as requested (the mount destination). */
  mountpoint: z.string(),
  /** The symlink-free in-container path it resolved to in the rootfs at create; sync-out target. */
  rootfsPath: z.string(),
  hostDir: z.string(),
  /** False while the first sync-in runs: the directory is incomplete and is redone. */
  syncedIn: z.boolean(),
  /** The last complete sync-out: when it ran and the inode of the directory it left in the rootfs. */
  lastSyncOut: z.object({ startMs: z.number(), endMs: z.number(), targetIno: z.string() }).optional(),
});
const ContainerRecord = z.object({
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  size: z.number().int().positive(),
  /** statfs f_type of the rootfs at create: sync-out refuses a rootfs that is no longer mounted. */
  rootfsType: z.number().int(),
  volumes: z.array(VolumeRecord),
});
const StateSchema = z.object({ version: z.literal(1), containers: z.record(z.string(), ContainerRecord) });
type State = z.infer<typeof StateSchema>;
type ContainerRec = z.infer<typeof ContainerRecord>;
type VolumeRec = z.infer<typeof VolumeRecord>;

export interface VolumeManagerOptions {
  /** Directory holding the volumes, e.g. /var/lib/sysrunc/volumes; must not be on overlayfs. */
  readonly root: string;
  readonly stateFile: string;
}

export interface CreateVolumesRequest {
  /** Host path of the container rootfs with the image's 0-based ownership (not an idmapped view). */
  readonly rootfs: string;
  /** In-container store paths (storePathsFor().paths). */
  readonly mountpoints: readonly string[];
  /** Host uid/gid of the container's root. */
  readonly uid: number;
  readonly gid: number;
  /** Size of the container's id range; default 65536. */
  readonly size?: number;
}

export interface VolumeMount {
  destination: string;
  source: string;
  type: 'bind';
  options: string[];
}

export interface SyncOutRequest {
  /** Host path of the container rootfs (0-based ownership), still mounted. */
  readonly rootfs: string;
  /** The container runs with --rm: its rootfs is about to go, so nothing is copied. */
  readonly autoRemove?: boolean;
  /**
   * `rootfs` is the upper dir of the container's overlay, written directly because the overlay is
   * no longer mounted (dockerd unmounts it before the runtime's delete). The store paths' content
   * lives only in the upper layer, so no whiteout against a lower layer is needed.
   */
  readonly intoUpperdir?: boolean;
}

export interface SyncReport {
  readonly mountpoint: string;
  readonly entries: number;
  readonly bytes: number;
  /** Whiteouts the rootfs could not hold, recorded in the sidecar instead. */
  readonly sidecarWhiteouts: number;
  /** Entries an in-place update found unchanged and left alone (0 for a full copy). */
  readonly kept: number;
  readonly ms: number;
}

export interface SyncOutResult {
  readonly skipped: boolean;
  readonly volumes: SyncReport[];
}

export interface VolumeInfo {
  readonly mountpoint: string;
  readonly rootfsPath: string;
  readonly hostDir: string;
  readonly syncedIn: boolean;
  readonly lastSyncOut?: { readonly startMs: number; readonly endMs: number; readonly targetIno: string };
}

export interface ContainerVolumes {
  readonly id: string;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly volumes: readonly VolumeInfo[];
}

export class VolumeManager {
  private readonly root: string;
  private readonly stateFile: string;
  private state: State;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(opts: VolumeManagerOptions) {
    this.root = path.resolve(opts.root);
    this.stateFile = path.resolve(opts.stateFile);
    mkdirSync(path.dirname(this.stateFile), { recursive: true, mode: 0o700 });
    this.state = readJson(this.stateFile, StateSchema) ?? { version: 1, containers: {} };
  }

  /**
   * Makes the container's volumes (or keeps the ones it has: no second sync-in, so stop/start
   * keeps inner images) and returns the bind mounts for them, in the order given. A failure
   * removes every volume this call made, and its state entries.
   */
  createVolumes(id: string, req: CreateVolumesRequest): Promise<{ mounts: VolumeMount[] }> {
    return this.serialized(id, () => this.create(id, req));
  }

  /** Copies each volume back into the rootfs (ids shifted back), unless req.autoRemove. */
  syncOut(id: string, req: SyncOutRequest): Promise<SyncOutResult> {
    return this.serialized(id, async () => {
      try {
        return await this.syncOutNow(id, req);
      } catch (err) {
        if (err instanceof VolumeError) throw err;
        throw new VolumeError(`sync-out of ${id}: ${describe(err)}`, { cause: err });
      }
    });
  }

  /** Removes the container's volumes and state; a no-op for a container without volumes. */
  destroyVolumes(id: string): Promise<void> {
    return this.serialized(id, () => this.destroy(id));
  }

  /**
   * For manager shutdown: syncs out (when rootfsOf gives a rootfs) and destroys the volumes of
   * every container `filter` selects; goes on past a failing container and reports it.
   */
  async syncOutAndDestroyAll(
    filter: (id: string) => boolean,
    rootfsOf?: (id: string) => string | undefined,
  ): Promise<{ destroyed: string[]; failed: Array<{ id: string; error: string }> }> {
    const destroyed: string[] = [];
    const failed: Array<{ id: string; error: string }> = [];
    for (const id of Object.keys(this.state.containers)) {
      if (!filter(id)) continue;
      try {
        const rootfs = rootfsOf?.(id);
        if (rootfs !== undefined) await this.syncOut(id, { rootfs });
        await this.destroyVolumes(id);
        destroyed.push(id);
      } catch (err) {
        failed.push({ id, error: describe(err) });
      }
    }
    return { destroyed, failed };
  }

  list(): ContainerVolumes[] {
    return Object.entries(this.state.containers).map(([id, c]) => ({
      id, uid: c.uid, gid: c.gid, size: c.size, volumes: c.volumes.map((v) => structuredClone(v)),
    }));
  }

  /**
   * Startup cleanup after a crash: removes volumes whose first sync-in never finished and
   * directories under the root that no container owns. Returns the host paths removed.
   */
  async recover(): Promise<string[]> {
    const removed: string[] = [];
    for (const id of Object.keys(this.state.containers)) {
      await this.serialized(id, async () => {
        const c = this.state.containers[id];
        if (c === undefined) return;
        for (const v of c.volumes.filter((x) => !x.syncedIn)) {
          await removeTree(v.hostDir);
          removed.push(v.hostDir);
        }
        this.dropVolumes(id, c.volumes.filter((x) => !x.syncedIn));
      });
    }
    let names: string[] = [];
    try {
      names = readdirSync(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'readdir', this.root);
    }
    for (const name of names) {
      const dir = path.join(this.root, name);
      if (this.state.containers[name] !== undefined || isStateFileDir(dir, this.stateFile)) continue;
      if (!lstatSync(dir).isDirectory()) continue;
      await removeTree(dir);
      removed.push(dir);
    }
    return removed;
  }

  private async create(id: string, req: CreateVolumesRequest): Promise<{ mounts: VolumeMount[] }> {
    checkId(id);
    const ids: IdRange = { uid: req.uid, gid: req.gid, size: req.size ?? DEFAULT_ID_RANGE_SIZE };
    checkIds(id, ids);
    const mountpoints = req.mountpoints.map((m) => checkMountpoint(id, m));
    let c = this.state.containers[id];
    if (c !== undefined && (c.uid !== ids.uid || c.gid !== ids.gid || c.size !== ids.size)) {
      throw new VolumeError(
        `create volumes for ${id}: existing volumes belong to ids ${c.uid}:${c.gid}+${c.size}, not ${ids.uid}:${ids.gid}+${ids.size}`,
      );
    }
    if (c !== undefined) {
      const incomplete = c.volumes.filter((v) => !v.syncedIn && mountpoints.includes(v.mountpoint));
      for (const v of incomplete) await removeTree(v.hostDir);
      this.dropVolumes(id, incomplete);
      c = this.state.containers[id];
    }
    const missing = mountpoints.filter((m) => c?.volumes.find((v) => v.mountpoint === m) === undefined);
    if (missing.length > 0) await this.createMissing(id, ids, req.rootfs, missing);
    const rec = this.state.containers[id];
    return {
      mounts: mountpoints.map((m) => {
        const v = rec?.volumes.find((x) => x.mountpoint === m);
        if (v === undefined) throw new VolumeError(`create volumes for ${id}: ${m}: volume missing after create`);
        return { destination: m, source: v.hostDir, type: 'bind', options: [...MOUNT_OPTIONS] };
      }),
    };
  }

  private async createMissing(id: string, ids: IdRange, rootfs: string, mountpoints: string[]): Promise<void> {
    refuseOverlay(nearestExisting(this.root), `create volumes for ${id}`);
    ensureDir(this.root, 0o711);
    const containerDir = this.containerDir(id);
    const containerDirExisted = exists(containerDir);
    const made: VolumeRec[] = [];
    try {
      await withRootfs(rootfs, async (r) => {
        for (const mountpoint of mountpoints) {
          const v: VolumeRec = {
            mountpoint,
            rootfsPath: r.resolve(mountpoint),
            hostDir: path.join(containerDir, volumeDirName(mountpoint)),
            syncedIn: false,
          };
          if (v.rootfsPath === '/') throw new VolumeError(`create volumes for ${id}: ${mountpoint} resolves to / in the rootfs`);
          // Two volumes for one place in the rootfs (symlinks in the image) would sync out over each other.
          const clash = this.state.containers[id]?.volumes.find(
            (o) => isSameOrBelow(o.rootfsPath, v.rootfsPath) || isSameOrBelow(v.rootfsPath, o.rootfsPath),
          );
          if (clash !== undefined) {
            throw new VolumeError(
              `create volumes for ${id}: ${mountpoint} resolves to ${v.rootfsPath} in the rootfs, ` +
                `overlapping the volume for ${clash.mountpoint} (${clash.rootfsPath})`,
            );
          }
          // Recorded before the directory exists, so a crash never leaves an untracked one.
          this.addVolume(id, ids, fsTypeOf(rootfs), v);
          made.push(v);
          ensureOwnedDir(containerDir, 0o700, ids);
          await removeTree(v.hostDir); // untracked leftovers of a crash in destroy
          fsCall('mkdir', v.hostDir, () => mkdirSync(v.hostDir, { mode: 0o755 }));
          fsCall('chown', v.hostDir, () => chownSync(v.hostDir, ids.uid, ids.gid));
          refuseOverlay(v.hostDir, `create volumes for ${id}`);
          try {
            await this.syncIn(r, v, ids);
          } catch (err) {
            throw new VolumeError(`create volumes for ${id}: sync-in of ${mountpoint} from ${rootfs} into ${v.hostDir}: ${describe(err)}`, { cause: err });
          }
          v.syncedIn = true;
          this.persist();
        }
      });
    } catch (err) {
      for (const v of made) await removeTree(v.hostDir).catch(() => undefined);
      this.dropVolumes(id, made);
      if (!containerDirExisted && this.state.containers[id] === undefined) await removeTree(containerDir).catch(() => undefined);
      if (err instanceof VolumeError) throw err;
      throw new VolumeError(`create volumes for ${id}: ${describe(err)}`, { cause: err });
    }
  }

  private async syncIn(r: Rootfs, v: VolumeRec, ids: IdRange): Promise<CopyStats | undefined> {
    let srcFd: number | undefined;
    try {
      srcFd = r.open(v.rootfsPath, O_PATH | fsConstants.O_DIRECTORY);
    } catch (err) {
      if (err instanceof SyscallError && err.code === 'ENOTDIR') {
        throw new VolumeError(`${r.label(v.rootfsPath)} is not a directory in the image`);
      }
      throw err;
    }
    if (srcFd === undefined) return undefined; // the image has nothing there: an empty volume
    try {
      const sidecar = readSidecar(r, v.rootfsPath);
      return await withUnshiftedView(v.hostDir, ids, (view) =>
        copyTree(`/proc/self/fd/${srcFd}`, view, {
          srcLabel: r.label(v.rootfsPath),
          dstLabel: v.hostDir,
          hooks: sidecar && { extraWhiteouts: (dir) => sidecar.whiteoutsIn(dir), extraXattrs: (p) => sidecar.xattrsOf(p) },
        }),
      );
    } finally {
      closeQuietly(srcFd);
    }
  }

  private async syncOutNow(id: string, req: SyncOutRequest): Promise<SyncOutResult> {
    checkId(id);
    const c = this.state.containers[id];
    if (req.autoRemove === true || c === undefined) return { skipped: req.autoRemove === true, volumes: [] };
    const reports: SyncReport[] = [];
    let type: number;
    try {
      type = fsTypeOf(req.rootfs);
    } catch (err) {
      throw new VolumeError(`sync-out of ${id}: ${describe(err)}`, { cause: err });
    }
    if (type !== c.rootfsType && req.intoUpperdir !== true) {
      // Docker's merged dir is an empty directory once unmounted: writing there would lose the data.
      throw new VolumeError(
        `sync-out of ${id}: rootfs ${req.rootfs} is on filesystem type 0x${type.toString(16)}, ` +
          `not 0x${c.rootfsType.toString(16)} as at create; is it still mounted?`,
      );
    }
    await withRootfs(req.rootfs, async (r) => {
      for (const v of c.volumes.filter((x) => x.syncedIn)) {
        const start = process.hrtime.bigint();
        try {
          const stats = await syncOutVolume(r, v, c, () => this.persist());
          reports.push({
            mountpoint: v.mountpoint, entries: stats.entries, bytes: stats.bytes,
            sidecarWhiteouts: stats.rejectedWhiteouts, kept: stats.kept, ms: Number(process.hrtime.bigint() - start) / 1e6,
          });
        } catch (err) {
          throw new VolumeError(`sync-out of ${id} ${v.mountpoint} from ${v.hostDir} into ${r.label(v.rootfsPath)}: ${describe(err)}`, { cause: err });
        }
      }
    });
    return { skipped: false, volumes: reports };
  }

  private async destroy(id: string): Promise<void> {
    checkId(id);
    const dir = this.containerDir(id);
    try {
      for (const mp of mountsUnder(dir).reverse()) unmount(mp, { detach: true });
      await removeTree(dir);
    } catch (err) {
      throw new VolumeError(`destroy volumes of ${id}: ${describe(err)}`, { cause: err });
    }
    if (this.state.containers[id] !== undefined) {
      delete this.state.containers[id];
      this.persist();
    }
  }

  private containerDir(id: string): string {
    return path.join(this.root, id);
  }

  private addVolume(id: string, ids: IdRange, rootfsType: number, v: VolumeRec): void {
    const c: ContainerRec = this.state.containers[id] ?? { uid: ids.uid, gid: ids.gid, size: ids.size, rootfsType, volumes: [] };
    c.volumes.push(v);
    this.state.containers[id] = c;
    this.persist();
  }

  private dropVolumes(id: string, gone: readonly VolumeRec[]): void {
    const c = this.state.containers[id];
    if (c === undefined || gone.length === 0) return;
    c.volumes = c.volumes.filter((v) => !gone.includes(v));
    if (c.volumes.length === 0) delete this.state.containers[id];
    this.persist();
  }

  private persist(): void {
    writeJsonAtomic(this.stateFile, this.state);
  }

  /** Runs operations on one container one after another; different containers run concurrently. */
  private serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return next;
  }
}

/**
 * Copies volume v into the rootfs. The first time (or when the target is not the directory the
 * last sync-out left) it fills a fresh sibling and swaps it in, so a failure leaves the old content
 * whole; after that it updates the target in place, keeping every entry that neither side changed
 * since the last sync-out (ctime moves with any change to content, attributes or xattrs and cannot
 * be set back), so stop/start of a container with gigabytes of inner images copies only what changed.
 * `persist` is called with the record updated.
 */
async function syncOutVolume(r: Rootfs, v: VolumeRec, ids: IdRange, persist: () => void): Promise<CopyStats> {
  const startMs = Date.now();
  const name = path.posix.basename(v.rootfsPath);
  const parentInRoot = path.posix.dirname(v.rootfsPath);
  const parentFd = r.openDirCreating(parentInRoot);
  try {
    // Paths below the fd of the parent resolved in root; the labels are for messages.
    const parent = `/proc/self/fd/${parentFd}`;
    const target = `${parent}/${name}`;
    const fresh = `${parent}/.${name}.sysrunc-new`;
    const old = `${parent}/.${name}.sysrunc-old`;
    const label = (p: string) => r.label(path.posix.join(parentInRoot, path.posix.basename(p)));
    await removeTree(fresh, label(fresh));
    await removeTree(old, label(old));
    const prev = v.lastSyncOut;
    // A clock that went back since could stamp new changes with old times: copy everything then.
    const update = prev !== undefined && startMs > prev.endMs && dirIno(target, label(target)) === prev.targetIno;
    if (prev !== undefined) {
      v.lastSyncOut = undefined; // a crash mid-update must not leave the next one trusting the target
      persist();
    }
    const sidecar = new SidecarWriter();
    const opts = {
      srcLabel: v.hostDir,
      dstLabel: r.label(v.rootfsPath),
      hooks: {
        onRejectedWhiteout: (w: Whiteout) => sidecar.addWhiteout(w),
        onXattrs: (p: Buffer, x: Xattrs) => sidecar.addXattrs(p, x),
        onRejectedXattr: (_p: Buffer, name: string) => sidecar.keepsXattr(name),
      },
    };
    let stats: CopyStats;
    if (update) {
      stats = await withUnshiftedView(v.hostDir, ids, (view) => copyTree(view, target, { ...opts, unchanged: unchangedSince(prev) }));
    } else {
      try {
        mkdirSync(fresh, { mode: 0o700 });
      } catch (err) {
        throw fromNodeError(err, 'mkdir', label(fresh));
      }
      try {
        stats = await withUnshiftedView(v.hostDir, ids, (view) => copyTree(view, fresh, opts));
        await replaceWith(target, fresh, old, r.label(v.rootfsPath));
      } catch (err) {
        await removeTree(fresh).catch(() => undefined);
        throw err;
      }
    }
    const sidecarPath = `${parent}/${sidecarName(name)}`;
    if (sidecar.isEmpty()) {
      removeFile(sidecarPath, label(sidecarPath));
    } else {
      try {
        writeFileAtomic(sidecarPath, sidecar.toJson(), { mode: 0o600 });
      } catch (err) {
        throw fromNodeError(err, 'write', label(sidecarPath));
      }
    }
    await removeTree(old, label(old));
    const targetIno = dirIno(target, label(target));
    if (targetIno !== undefined) v.lastSyncOut = { startMs, endMs: Date.now(), targetIno };
    persist();
    return stats;
  } finally {
    closeQuietly(parentFd);
  }
}

/** An entry neither side changed since the sync-out that ran from prev.startMs to prev.endMs. */
export function unchangedSince(prev: { startMs: number; endMs: number }): (src: Stat, dst: Stat) => boolean {
  // 1 s covers the kernel's coarse timestamp clock lagging Date.now() by a tick.
  const srcBefore = prev.startMs - 1000;
  return (src, dst) =>
    src.ctimeMs < srcBefore && dst.ctimeMs <= prev.endMs &&
    // A directory's size is the filesystem's bookkeeping, not content.
    ((src.mode & S_IFMT) === S_IFDIR || src.size === dst.size) &&
    src.mtimeSec === dst.mtimeSec && src.mtimeNsec === dst.mtimeNsec &&
    src.mode === dst.mode && src.uid === dst.uid && src.gid === dst.gid &&
    src.rdevMajor === dst.rdevMajor && src.rdevMinor === dst.rdevMinor;
}

/** Inode number of directory p (not its device: overlayfs gets a new one per mount), or undefined. */
function dirIno(p: string, label: string): string | undefined {
  try {
    const st = lstatSync(p, { bigint: true });
    return st.isDirectory() ? st.ino.toString() : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromNodeError(err, 'lstat', label);
  }
}

/** Puts `fresh` at `target`: rename the old one aside if overlayfs allows it, else delete it first. */
async function replaceWith(target: string, fresh: string, old: string, label: string): Promise<void> {
  let st;
  try {
    st = lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'lstat', label);
  }
  if (st !== undefined) {
    if (!st.isDirectory()) {
      removeFile(target, label);
    } else {
      try {
        renameSync(target, old);
      } catch (err) {
        // overlayfs without redirect_dir cannot rename a directory that has lower content.
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw fromNodeError(err, 'rename', label);
        await removeTree(target, label);
      }
    }
  }
  try {
    renameSync(fresh, target);
  } catch (err) {
    throw fromNodeError(err, 'rename', label);
  }
}

function readSidecar(r: Rootfs, rootfsPath: string): Sidecar | undefined {
  const file = path.posix.join(path.posix.dirname(rootfsPath), sidecarName(path.posix.basename(rootfsPath)));
  const text = r.readFile(file, MAX_SIDECAR_BYTES);
  if (text === undefined) return undefined;
  try {
    return Sidecar.parse(text.toString('utf8'));
  } catch (err) {
    throw new VolumeError(`${r.label(file)}: ${describe(err)} (delete it to sync in without it)`);
  }
}

function volumeDirName(mountpoint: string): string {
  const slug = mountpoint.slice(1).replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 180);
  const hash = createHash('sha256').update(mountpoint).digest('hex').slice(0, 8);
  return `${slug}-${hash}`;
}

function checkId(id: string): void {
  if (!/^[\w+\-.]{1,255}$/.test(id) || id === '.' || id === '..') throw new VolumeError(`invalid container id ${JSON.stringify(id)}`);
}

function checkIds(id: string, ids: IdRange): void {
  for (const [k, v] of Object.entries(ids)) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new VolumeError(`create volumes for ${id}: invalid ${k} ${v}`);
  }
  if (ids.uid === 0 || ids.gid === 0) throw new VolumeError(`create volumes for ${id}: refusing host root as the container's root`);
  if (ids.size === 0) throw new VolumeError(`create volumes for ${id}: empty id range`);
}

function checkMountpoint(id: string, m: string): string {
  if (!path.posix.isAbsolute(m)) throw new VolumeError(`create volumes for ${id}: mountpoint ${JSON.stringify(m)} is not absolute`);
  const norm = path.posix.resolve(m);
  if (norm === '/') throw new VolumeError(`create volumes for ${id}: refusing a volume over /`);
  return norm;
}

function fsTypeOf(p: string): number {
  try {
    return statfsSync(p).type;
  } catch (err) {
    throw fromNodeError(err, 'statfs', p);
  }
}

function refuseOverlay(dir: string, what: string): void {
  let type: number;
  try {
    type = statfsSync(dir).type;
  } catch (err) {
    throw new VolumeError(`${what}: ${fromNodeError(err, 'statfs', dir).message}`);
  }
  if (type === OVERLAYFS_SUPER_MAGIC) {
    throw new VolumeError(`${what}: ${dir} is on overlayfs; store volumes must be on a filesystem an inner overlayfs can use (ext4, xfs, btrfs)`);
  }
}

/** dir, or its closest ancestor that exists (what a mkdir -p of dir would land on). */
function nearestExisting(dir: string): string {
  let p = dir;
  while (!exists(p) && p !== path.dirname(p)) p = path.dirname(p);
  return p;
}

/** Runs a node:fs call, reporting a failure as "op path: CODE (text)". */
function fsCall<T>(op: string, p: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNodeError(err, op, p);
  }
}

function ensureDir(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    throw fromNodeError(err, 'mkdir', dir);
  }
}

/** The per-container directory: only the container's root (and host root) may traverse it. */
function ensureOwnedDir(dir: string, mode: number, ids: IdRange): void {
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(err, 'mkdir', dir);
  }
  fsCall('chown', dir, () => chownSync(dir, ids.uid, ids.gid));
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

async function removeTree(p: string, label = p): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', label);
  }
}

function removeFile(p: string, label = p): void {
  try {
    unlinkSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'unlink', label);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // an fd we opened ourselves; a close error has nothing left to tell
  }
}

function isStateFileDir(dir: string, stateFile: string): boolean {
  return stateFile === dir || stateFile.startsWith(`${dir}/`);
}
