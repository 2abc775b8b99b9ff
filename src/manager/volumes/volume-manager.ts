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
import { chownSync, closeSync, constants as fsConstants, lstatSync, mkdirSync, readdirSync, statfsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { readJson, writeJsonAtomic } from '../state-file.ts';
import { mountsUnder, unmount } from '../../host/mount.ts';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { copyTree, type CopyStats } from './copy-tree.ts';
import { syncOutVolume } from './copy-out.ts';
import { VolumeError, describe } from './errors.ts';
import { Rootfs, withRootfs } from './in-root.ts';
import {
  attachLayerView, detachLayerView, layerUnusable, removeLayerLeftovers, syncIntoLayer, writeLayerSidecar,
} from './in-layer.ts';
import { O_PATH } from '../../host/fs-native.ts';
import { Sidecar, sidecarName } from './sidecar.ts';
import { faultPoint } from './fault.ts';
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
  /**
   * In-layer mode (in-layer.ts): the data lives at rootfsPath in this upper dir and hostDir is only
   * where its idmapped view is attached. Absent: copy mode, hostDir holds the data.
   */
  layer: z.object({ upperdir: z.string() }).optional(),
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
  /**
   * Upper dir of the container's overlay rootfs, when the container's root owns its files through
   * idmapped mounts: new volumes then keep their data in that layer (in-layer.ts) if its filesystem
   * can be idmapped, and stopping moves no data. Absent: volumes under the root, copied at stop.
   */
  readonly upperdir?: string;
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
  /** copy: the data was copied into the rootfs; in-layer: it is there already, only metadata was walked. */
  readonly mode: 'copy' | 'in-layer';
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
  readonly layer?: { readonly upperdir: string };
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
          await discardVolumeDir(v);
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
      await removeUnmounted(dir);
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
      // Incomplete ones are redone; in-layer ones whose layer is gone (a new layer under the old id) start afresh.
      const redo = c.volumes.filter((v) => mountpoints.includes(v.mountpoint) && (!v.syncedIn || layerGone(v, req.upperdir)));
      for (const v of redo) await discardVolumeDir(v);
      this.dropVolumes(id, redo);
      c = this.state.containers[id];
    }
    for (const v of c?.volumes ?? []) {
      if (v.layer !== undefined && mountpoints.includes(v.mountpoint)) await this.reattach(id, v, ids, req);
    }
    const missing = mountpoints.filter((m) => c?.volumes.find((v) => v.mountpoint === m) === undefined);
    if (missing.length > 0) await this.createMissing(id, ids, req, missing);
    const rec = this.state.containers[id];
    return {
      mounts: mountpoints.map((m) => {
        const v = rec?.volumes.find((x) => x.mountpoint === m);
        if (v === undefined) throw new VolumeError(`create volumes for ${id}: ${m}: volume missing after create`);
        return { destination: m, source: v.hostDir, type: 'bind', options: [...MOUNT_OPTIONS] };
      }),
    };
  }

  /** A kept in-layer volume of a stopped container starting again: a new view of the same directory. */
  private async reattach(id: string, v: VolumeRec, ids: IdRange, req: CreateVolumesRequest): Promise<void> {
    const upperdir = v.layer?.upperdir;
    if (upperdir === undefined) return;
    if (req.upperdir !== upperdir) {
      throw new VolumeError(
        `create volumes for ${id}: ${v.mountpoint} lives in the layer ${upperdir}, which this start ` +
          (req.upperdir === undefined ? 'does not mount with idmapped ownership' : `does not use (its upper dir is ${req.upperdir})`),
      );
    }
    try {
      await withRootfs(req.rootfs, (r) => syncIntoLayer(r, upperdir, v.rootfsPath)); // adopts what is there
      attachLayerView(upperdir, v.rootfsPath, v.hostDir, ids);
    } catch (err) {
      throw new VolumeError(`create volumes for ${id}: view of ${v.mountpoint} in ${upperdir}: ${describe(err)}`, { cause: err });
    }
  }

  private async createMissing(id: string, ids: IdRange, req: CreateVolumesRequest, mountpoints: string[]): Promise<void> {
    const rootfs = req.rootfs;
    // In-layer when the layer can hold the data (see in-layer.ts); else copied volumes under the root.
    const inLayer = req.upperdir !== undefined && layerUnusable(req.upperdir) === undefined ? req.upperdir : undefined;
    if (inLayer === undefined) refuseOverlay(nearestExisting(this.root), `create volumes for ${id}`);
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
            ...(inLayer === undefined ? {} : { layer: { upperdir: inLayer } }),
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
          await removeUnmounted(v.hostDir); // untracked leftovers of a crash in destroy
          if (inLayer !== undefined) {
            try {
              await syncIntoLayer(r, inLayer, v.rootfsPath);
              attachLayerView(inLayer, v.rootfsPath, v.hostDir, ids);
            } catch (err) {
              throw new VolumeError(`create volumes for ${id}: ${mountpoint} in the layer ${inLayer}: ${describe(err)}`, { cause: err });
            }
            v.syncedIn = true;
            this.persist();
            continue;
          }
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
      for (const v of made) await discardVolumeDir(v).catch(() => undefined);
      this.dropVolumes(id, made);
      if (!containerDirExisted && this.state.containers[id] === undefined) await removeUnmounted(containerDir).catch(() => undefined);
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
    // In-layer volumes: the data is in the layer already; the view goes, the sidecar is written.
    for (const v of c.volumes.filter((x) => x.syncedIn && x.layer !== undefined)) {
      const start = process.hrtime.bigint();
      const upperdir = v.layer?.upperdir ?? '';
      try {
        detachLayerView(v.hostDir);
        faultPoint('layer-sync-out:detached');
        const walked = await writeLayerSidecar(upperdir, v.rootfsPath);
        reports.push({
          mountpoint: v.mountpoint, entries: walked?.entries ?? 0, bytes: 0, sidecarWhiteouts: walked?.whiteouts ?? 0, kept: 0,
          ms: Number(process.hrtime.bigint() - start) / 1e6, mode: 'in-layer',
        });
      } catch (err) {
        throw new VolumeError(`sync-out of ${id} ${v.mountpoint} (in the layer ${upperdir}): ${describe(err)}`, { cause: err });
      }
    }
    const copied = c.volumes.filter((x) => x.syncedIn && x.layer === undefined);
    if (copied.length === 0) return { skipped: false, volumes: reports };
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
      for (const v of copied) {
        const start = process.hrtime.bigint();
        try {
          const stats = await syncOutVolume(r, v, c, () => this.persist());
          reports.push({
            mountpoint: v.mountpoint, entries: stats.entries, bytes: stats.bytes,
            sidecarWhiteouts: stats.rejectedWhiteouts, kept: stats.kept, ms: Number(process.hrtime.bigint() - start) / 1e6, mode: 'copy',
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
      await removeUnmounted(dir);
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

/**
 * Removes dir after detaching every mount at or below it: an attached in-layer view would
 * otherwise let a recursive removal reach into the container's layer and delete its data.
 */
async function removeUnmounted(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir).reverse()) unmount(mp, { detach: true });
  const left = mountsUnder(dir);
  if (left.length > 0) throw new SyscallError('umount2', left[0], 16 /* EBUSY */, 'still mounted after a detach; not removing the tree below it');
  await removeTree(dir);
}

/** Removes what a volume has under the root (never an in-layer volume's data) and a half-made sync-in. */
async function discardVolumeDir(v: VolumeRec): Promise<void> {
  detachLayerView(v.hostDir);
  await removeUnmounted(v.hostDir);
  if (v.layer !== undefined && exists(v.layer.upperdir)) await removeLayerLeftovers(v.layer.upperdir, v.rootfsPath);
}

/** An in-layer volume whose layer no longer exists, while this start brings a different one. */
function layerGone(v: VolumeRec, upperdir: string | undefined): boolean {
  return v.layer !== undefined && upperdir !== undefined && upperdir !== v.layer.upperdir && !exists(v.layer.upperdir);
}

async function removeTree(p: string, label = p): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    throw fromNodeError(err, 'rm', label);
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
