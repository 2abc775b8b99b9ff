// Store volumes: a host directory per container and store path (/var/lib/docker, ...) bind-mounted
// over that path, so inner container engines get a real filesystem instead of the container's
// overlayfs rootfs. Two modes, chosen per volume at its first create and recorded:
//
// - in-layer (in-layer.ts), when the container's root owns its overlay rootfs through idmapped
//   mounts and the upper dir's filesystem can be idmapped: the data rests at the store path in the
//   upper dir, with the image's (host-root) ids, beside the layer while the container runs
//   (beside-layer.ts); the volume is an idmapped view of it. A stop moves no data, whatever its size.
// - copy (copy-out.ts): the volume is a directory under the root holding the container's host
//   ids; the image's content is copied in at the first create and copied back into the rootfs at
//   every stop (in-kernel copies, hardlinks, sparse files, xattrs and ACLs kept).
// Copy-mode sync-out writes through the rootfs path the caller gives (Docker's merged dir, still
// mounted when the runtime deletes the container) or, with intoUpperdir, into the upper dir once
// nothing mounts it. Ids are shifted by the kernel: one side of every copy is an idmapped view of the
// volume (shift-view.ts). What overlayfs or Docker's layer format cannot carry (whiteouts, most
// xattrs) goes into a sidecar file next to the tree (sidecar.ts), in both modes.
import { lstatSync, mkdirSync, readdirSync, chownSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { readJson, writeJsonAtomic } from '../state-file.ts';
import { fromNodeError } from '../../host/libc.ts';
import { syncIntoVolume, syncOutVolume } from './copy-out.ts';
import { VolumeError, describe } from './errors.ts';
import { withRootfs } from '../../host/in-root.ts';
import { layerUnusable, stopLayerVolume } from './in-layer.ts';
import { attachStore, layerRecordFor, placeStores, placedLayer } from './beside-layer.ts';
import {
  DEFAULT_ID_RANGE_SIZE, MOUNT_OPTIONS, StateSchema, notStopping,
  type ContainerRec, type ContainerVolumes, type CreateVolumesRequest, type State, type SyncOutRequest,
  type SyncOutResult, type SyncReport, type VolumeManagerOptions, type VolumeMount, type VolumeRec,
} from './records.ts';
import { isSameOrBelow } from '../../common/store-paths.ts';
import type { IdRange } from './shift-view.ts';
import {
  checkId, checkIds, checkMountpoint, discardVolumeDir, ensureDir, ensureOwnedDir, exists, fsCall, fsTypeOf,
  isStateFileDir, layerGone, nearestExisting, refuseOverlay, removeUnmounted, volumeDirName,
} from './volume-fs.ts';

export {
  DEFAULT_ID_RANGE_SIZE, OVERLAYFS_SUPER_MAGIC,
  type ContainerVolumes, type CreateVolumesRequest, type SyncOutRequest, type SyncOutResult, type SyncReport,
  type VolumeInfo, type VolumeManagerOptions, type VolumeMount,
} from './records.ts';

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

  /**
   * Host-executor hooks around sysrunc's rootfs overlay (beside-layer.ts), synchronous: each
   * in-layer store goes beside the layer before the overlay is mounted, and back after it is gone.
   * Returns what could not be moved (the data stays whole where it is).
   */
  leaveLayers(id: string): string[] {
    return placeStores(id, this.state.containers[id]?.volumes ?? [], 'beside');
  }

  returnToLayers(id: string): string[] {
    return placeStores(id, this.state.containers[id]?.volumes ?? [], 'layer');
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
        for (const v of c.volumes.filter((x) => x.layer?.stopping === true)) {
          // A stop the manager did not live to finish: the data is whole in the layer; the sidecar may be missing.
          try {
            await stopLayerVolume(v.hostDir, v.layer?.upperdir ?? '', v.rootfsPath);
            v.layer = notStopping(v.layer);
            this.persist();
          } catch {
            // left marked: the next stop (or the next start) writes it again
          }
        }
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
      await withRootfs(req.rootfs, (r) => attachStore(r, v, ids));
      // Running again: the next stop writes the sidecar; a record older than beside-layer.ts learns its place.
      const layer = placedLayer(notStopping(v.layer), v.rootfsPath);
      if (!isDeepStrictEqual(layer, v.layer)) {
        v.layer = layer;
        this.persist();
      }
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
          const rootfsPath = r.resolve(mountpoint);
          const v: VolumeRec = {
            mountpoint,
            rootfsPath,
            hostDir: path.join(containerDir, volumeDirName(mountpoint)),
            syncedIn: false,
            ...(inLayer === undefined ? {} : { layer: layerRecordFor(inLayer, rootfsPath) }),
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
              await attachStore(r, v, ids);
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
            await syncIntoVolume(r, v, ids);
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
        // Recorded first: a stop cut short is finished by recover() at the manager's next start.
        v.layer = { ...v.layer, upperdir, stopping: true };
        this.persist();
        const walked = await stopLayerVolume(v.hostDir, v.layer?.upperdir ?? '', v.rootfsPath);
        v.layer = notStopping(v.layer);
        this.persist();
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


