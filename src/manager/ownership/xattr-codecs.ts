// The binary formats of the xattrs that hold ids, and their shift by offset: POSIX ACLs
// (system.posix_acl_access/default) and v3 file capabilities (security.capability's rootid).
import { mapId, type ChownDirection, type IdOffset } from './id-shift.ts';

export const XATTR_ACL_ACCESS = 'system.posix_acl_access';
export const XATTR_ACL_DEFAULT = 'system.posix_acl_default';
export const XATTR_CAPS = 'security.capability';

const ACL_EA_VERSION = 2;
const ACL_USER = 0x02;
const ACL_GROUP = 0x08;

export interface XattrShift {
  /** The rewritten value, undefined when nothing changed. */
  value: Buffer | undefined;
  outOfRange: boolean;
}

/**
 * Shifts the ACL_USER/ACL_GROUP ids of a system.posix_acl_* value:
 * u32 version (2), then entries of u16 tag, u16 perm, u32 id (little endian).
 */
export function shiftPosixAcl(value: Buffer, offset: IdOffset, size: number, direction: ChownDirection): XattrShift {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== ACL_EA_VERSION) {
    throw new Error(`malformed POSIX ACL xattr (${value.length} bytes)`);
  }
  const out = Buffer.from(value);
  let changed = false;
  let outOfRange = false;
  for (let at = 4; at < out.length; at += 8) {
    const tag = out.readUInt16LE(at);
    if (tag !== ACL_USER && tag !== ACL_GROUP) continue;
    const id = out.readUInt32LE(at + 4);
    const mapped = mapId(id, tag === ACL_USER ? offset.uid : offset.gid, size, direction);
    if (mapped === undefined) outOfRange = true;
    else if (mapped !== id) {
      out.writeUInt32LE(mapped, at + 4);
      changed = true;
    }
  }
  return { value: changed ? out : undefined, outOfRange };
}

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
const XATTR_CAPS_SZ_2 = 20;
const XATTR_CAPS_SZ_3 = 24;

/**
 * Shifts the rootid of a security.capability value. v3 caps (namespaced, with
 * a rootid) get rootid mapped like a uid; a rootid that maps to 0 is written as
 * v2, which is what the kernel reports for it from the initial namespace.
 * v1/v2 caps carry no rootid (they are valid in every namespace) and stay.
 */
export function shiftFileCaps(value: Buffer, uidOffset: number, size: number, direction: ChownDirection): XattrShift {
  if (value.length < 4) throw new Error(`malformed security.capability xattr (${value.length} bytes)`);
  const magic = value.readUInt32LE(0);
  if ((magic & VFS_CAP_REVISION_MASK) >>> 0 !== VFS_CAP_REVISION_3 || value.length < XATTR_CAPS_SZ_3) {
    return { value: undefined, outOfRange: false };
  }
  const rootid = value.readUInt32LE(20);
  const mapped = mapId(rootid, uidOffset, size, direction);
  if (mapped === undefined) return { value: undefined, outOfRange: true };
  if (mapped === rootid) return { value: undefined, outOfRange: false };
  if (mapped === 0) {
    const v2 = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_2));
    v2.writeUInt32LE((VFS_CAP_REVISION_2 | (magic & VFS_CAP_FLAGS_EFFECTIVE)) >>> 0, 0);
    return { value: v2, outOfRange: false };
  }
  const out = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_3));
  out.writeUInt32LE(mapped, 20);
  return { value: out, outOfRange: false };
}
