// The volume manager's records (its state file) and the shapes of its requests and answers.
import { z } from 'zod';

export const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
export const DEFAULT_ID_RANGE_SIZE = 65536;
export const MOUNT_OPTIONS = ['rbind', 'rprivate'];

export const VolumeRecord = z.object({
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
  layer: z.object({
    upperdir: z.string(),
    /** Set while a stop runs: the manager's next start finishes it (detach the view, write the sidecar). */
    stopping: z.boolean().optional(),
    /**
     * Where the data lives while the container runs (beside-layer.ts): a directory beside the
     * upper dir, renamed back to rootfsPath in the layer at every stop. Absent: it stays in the
     * layer while running too, for the reason in notBeside.
     */
    beside: z.string().optional(),
    notBeside: z.string().optional(),
  }).optional(),
});
export const ContainerRecord = z.object({
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  size: z.number().int().positive(),
  /** statfs f_type of the rootfs at create: sync-out refuses a rootfs that is no longer mounted. */
  rootfsType: z.number().int(),
  volumes: z.array(VolumeRecord),
});
export const StateSchema = z.object({ version: z.literal(1), containers: z.record(z.string(), ContainerRecord) });
export type State = z.infer<typeof StateSchema>;
export type ContainerRec = z.infer<typeof ContainerRecord>;
export type VolumeRec = z.infer<typeof VolumeRecord>;

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
  readonly layer?: { readonly upperdir: string; readonly stopping?: boolean; readonly beside?: string; readonly notBeside?: string };
}

export interface ContainerVolumes {
  readonly id: string;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly volumes: readonly VolumeInfo[];
}

/** An in-layer record without its stop mark (the stop is over, or the container runs again). */
export function notStopping(layer: VolumeRec['layer']): VolumeRec['layer'] {
  if (layer === undefined) return undefined;
  const { stopping: _done, ...rest } = layer;
  return rest;
}
