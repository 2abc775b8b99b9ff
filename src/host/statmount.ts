// The top mount at a path, asked of that one mount: statx(STATX_MNT_ID_UNIQUE) names it and
// statmount(2) describes it (file system type and its options, as in mountinfo's super options).
// Reading /proc/self/mountinfo instead costs a read and a parse of every mount on the host (with a
// hundred containers running, ~700 lines), under the mount table's lock that every runc starting
// contends for. Unique mount ids (Linux 6.8) are never reused, so the answer is about the very
// mount statx saw. Kernels without them (or without STATMOUNT_MNT_OPTS, 6.11) answer undefined and
// the caller reads mountinfo as before.
import { loadKoffi } from './koffi-module.ts';
import { AT_FDCWD, STATX_ATTR_MOUNT_ROOT, SyscallError, lastErrno, libc, statxOrMissing } from './libc.ts';

export const STATX_MNT_ID_UNIQUE = 0x4000;
const STATMOUNT_SB_BASIC = 0x1;
const STATMOUNT_MNT_BASIC = 0x2;
const STATMOUNT_FS_TYPE = 0x20;
const STATMOUNT_MNT_OPTS = 0x80;
// struct mnt_id_req as first published (size, spare, mnt_id, param).
const MNT_ID_REQ_SIZE_VER0 = 24;
// struct statmount's fixed part; its strings follow, at offsets relative to its end.
const STATMOUNT_FIXED_SIZE = 512;
const ENOENT = 2;
const ENOSYS = 38;
const EOVERFLOW = 75;

const STATMOUNT_SYSCALL: Readonly<Record<string, number>> = { x64: 457, arm64: 457 };

/** What the top mount at a path is; 'unknown' where this kernel cannot tell it without mountinfo. */
export type TopMount =
  | { readonly kind: 'not-a-mount' }
  | { readonly kind: 'mount'; readonly uniqueId: bigint; readonly fsType: string; readonly superOptions: string }
  | { readonly kind: 'unknown' };

let statmountCall: ((req: Buffer, buf: Buffer, flags: number) => number) | undefined;
let unsupported = false;

function bind(): (req: Buffer, buf: Buffer, flags: number) => number {
  if (statmountCall) return statmountCall;
  const nr = STATMOUNT_SYSCALL[process.arch];
  if (nr === undefined) throw new Error(`sysrunc host layer: unsupported architecture ${process.arch}`);
  libc();
  const koffi = loadKoffi();
  const syscall = koffi.load('libc.so.6').func('long syscall(long number, ...)');
  statmountCall = (req, buf, flags) => Number(syscall(nr, 'void *', req, 'void *', buf, 'size_t', buf.length, 'unsigned int', flags));
  return statmountCall;
}

/** The unique id of the top mount at target and whether target is its root; undefined before 6.8. */
export function uniqueMountAt(target: string): { readonly uniqueId: bigint; readonly mountRoot: boolean } | undefined {
  const buf = statxOrMissing(AT_FDCWD, target, 0, STATX_MNT_ID_UNIQUE, target);
  if (buf === undefined) throw new SyscallError('statx', target, ENOENT);
  // struct statx: stx_mask @0, stx_attributes @8, stx_attributes_mask @56, stx_mnt_id @144
  if ((buf.readUInt32LE(0) & STATX_MNT_ID_UNIQUE) === 0) return undefined;
  if ((buf.readBigUInt64LE(56) & BigInt(STATX_ATTR_MOUNT_ROOT)) === 0n) return undefined;
  return { uniqueId: buf.readBigUInt64LE(144), mountRoot: (buf.readBigUInt64LE(8) & BigInt(STATX_ATTR_MOUNT_ROOT)) !== 0n };
}

/** statmount(2) of the mount with this unique id into a buffer; undefined where there is no statmount. */
function statmountRaw(uniqueId: bigint, mask: number): Buffer | undefined {
  if (unsupported) return undefined;
  const call = bind();
  const req = Buffer.alloc(MNT_ID_REQ_SIZE_VER0);
  req.writeUInt32LE(MNT_ID_REQ_SIZE_VER0, 0);
  req.writeBigUInt64LE(uniqueId, 8);
  req.writeBigUInt64LE(BigInt(mask), 16);
  // Options of an overlay of many layers can be long: grow the buffer while the kernel says so.
  for (let size = 16 * 1024; size <= 4 * 1024 * 1024; size *= 4) {
    const buf = Buffer.alloc(size);
    if (call(req, buf, 0) !== -1) return buf;
    const errno = lastErrno();
    if (errno === EOVERFLOW) continue;
    if (errno === ENOSYS) {
      unsupported = true;
      return undefined;
    }
    throw new SyscallError('statmount', `mount ${uniqueId}`, errno, errno === ENOENT ? 'no such mount' : libc().strerror(errno));
  }
  return undefined;
}

/**
 * File system type and options of the mount with this unique id; undefined where the kernel has no
 * statmount or does not report the options; a SyscallError ENOENT when that mount is gone.
 */
export function statmountOptions(uniqueId: bigint): { readonly fsType: string; readonly superOptions: string } | undefined {
  const buf = statmountRaw(uniqueId, STATMOUNT_SB_BASIC | STATMOUNT_FS_TYPE | STATMOUNT_MNT_OPTS);
  if (buf === undefined) return undefined;
  const got = Number(buf.readBigUInt64LE(8));
  // The mask says what was written: a kernel before 6.11 never writes the options, and a file
  // system without options leaves them out too. Either way mountinfo is the answer then.
  if ((got & STATMOUNT_FS_TYPE) === 0 || (got & STATMOUNT_MNT_OPTS) === 0) return undefined;
  const str = (offset: number): string => {
    const start = STATMOUNT_FIXED_SIZE + offset;
    const end = buf.indexOf(0, start);
    return buf.toString('utf8', start, end < 0 ? buf.length : end);
  };
  return { fsType: str(buf.readUInt32LE(36)), superOptions: str(buf.readUInt32LE(4)) };
}

// MOUNT_ATTR_* bits of statmount's mnt_attr, by the name mountinfo's per-mount options use.
const MOUNT_FLAG_BITS: ReadonlyArray<readonly [string, bigint]> = [['ro', 0x1n], ['nosuid', 0x2n], ['nodev', 0x4n], ['noexec', 0x8n]];

/**
 * The ro/nosuid/nodev/noexec flags of the mount target lives on (as named in mountinfo's per-mount
 * options), asked of that mount; undefined where the kernel cannot tell without mountinfo.
 */
export function mountFlagsAt(target: string): string[] | undefined {
  const at = uniqueMountAt(target);
  if (at === undefined) return undefined;
  let buf;
  try {
    buf = statmountRaw(at.uniqueId, STATMOUNT_MNT_BASIC);
  } catch {
    return undefined; // the mount went since statx: mountinfo tells what is there now
  }
  if (buf === undefined || (Number(buf.readBigUInt64LE(8)) & STATMOUNT_MNT_BASIC) === 0) return undefined;
  const attr = buf.readBigUInt64LE(64);
  return MOUNT_FLAG_BITS.filter(([, bit]) => (attr & bit) !== 0n).map(([name]) => name);
}

/** The top mount at target, from the mount itself; 'unknown' where only mountinfo can tell. */
export function topMountAt(target: string): TopMount {
  const at = uniqueMountAt(target);
  if (at === undefined) return { kind: 'unknown' };
  if (!at.mountRoot) return { kind: 'not-a-mount' };
  const described = statmountOptions(at.uniqueId);
  if (described === undefined) return { kind: 'unknown' };
  return { kind: 'mount', uniqueId: at.uniqueId, ...described };
}
