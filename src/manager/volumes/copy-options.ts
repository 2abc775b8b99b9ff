// What a tree copy (copy-tree.ts) is told, what it reports, and which xattrs it carries.
import type { Stat, Xattrs } from '../../host/fs-native.ts';

/**
 * Names a filesystem lists for its own bookkeeping of something copied under another name: XFS
 * shows the on-disk form of POSIX ACLs (system.posix_acl_*) as trusted.SGI_ACL_*. Their ids bypass
 * idmapped mounts, so copying them would undo the shift of the ACL's ids (and set the raw form as a
 * stray xattr on other filesystems); removing them from an XFS destination would remove its ACLs.
 */
export const FS_OWN_XATTRS: ReadonlySet<string> = new Set(['trusted.SGI_ACL_FILE', 'trusted.SGI_ACL_DEFAULT']);

/** The extended attributes a copy carries: all but FS_OWN_XATTRS. */
export function copyableXattrs(xattrs: Xattrs): Xattrs {
  return xattrs.some(([n]) => FS_OWN_XATTRS.has(n)) ? xattrs.filter(([n]) => !FS_OWN_XATTRS.has(n)) : xattrs;
}

/** The attributes copyTree gives an entry besides its content. */
export type Attrs = Pick<Stat, 'mode' | 'uid' | 'gid' | 'atimeSec' | 'atimeNsec' | 'mtimeSec' | 'mtimeNsec'>;

/** An overlay whiteout (char device 0/0) the destination could not hold, or one to recreate. */
export interface Whiteout {
  /** Relative path inside the tree, raw bytes. */
  readonly path: Buffer;
  readonly stat: Attrs;
  readonly xattrs: Xattrs;
}

export interface CopyHooks {
  /** A whiteout mknod refused with EPERM (overlayfs refuses to create them); the copy goes on. */
  onRejectedWhiteout?(w: Whiteout): void;
  /** Extended attributes of each copied entry (relative path, first name of a hardlinked inode). */
  onXattrs?(path: Buffer, xattrs: Xattrs): void;
  /**
   * An xattr the destination refused with EPERM or EOPNOTSUPP (e.g. trusted.overlay.* through
   * overlayfs before Linux 6.7); true: leave it out (the caller keeps it elsewhere), false: fail.
   */
  onRejectedXattr?(path: Buffer, name: string): boolean;
  /** Whiteouts to create in the destination directory `dir` (relative) besides what the source has. */
  extraWhiteouts?(dir: Buffer): readonly Whiteout[];
  /** Extended attributes to set on `path` (relative) besides the source's own. */
  extraXattrs?(path: Buffer): Xattrs | undefined;
}

export interface CopyOptions {
  /** Paths as error messages show them (the real ones may be /proc/self/fd/N/...). */
  readonly srcLabel: string;
  readonly dstLabel: string;
  readonly hooks?: CopyHooks;
  /**
   * Update a dst that already holds an earlier copy instead of filling an empty one: an existing
   * entry of the same type is kept when unchanged(src, dst) says so (a directory: its attributes,
   * checked after its children), anything else is replaced, entries the source lacks are removed.
   */
  readonly unchanged?: (src: Stat, dst: Stat) => boolean;
}

export interface CopyStats {
  entries: number;
  bytes: number;
  rejectedWhiteouts: number;
  /** Entries an update kept as they were. */
  kept: number;
}
