// Mount operations on top of the new mount API (open_tree, mount_setattr,
// move_mount) and /proc/self/mountinfo.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_RECURSIVE, AT_SYMLINK_NOFOLLOW,
  MNT_DETACH, MOUNT_ATTR_IDMAP, MOUNT_ATTR_RDONLY, MOUNT_ATTR_SIZE_VER0, MOVE_MOUNT_F_EMPTY_PATH, MS_PRIVATE,
  OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, STATX_ATTR_MOUNT_ROOT, STATX_MNT_ID, STATX_TYPE,
  SyscallError, UMOUNT_NOFOLLOW, fromNodeError, lastErrno, libc, statxOrMissing, sysFail,
} from './libc.ts';

const ELOOP = 40;
// mount_setattr(2) exists from Linux 5.12; before (Debian 11's 5.10), the classic mount(2) flags
// do the same for a mount that is attached.
const ENOSYS = 38;
const MS_RDONLY = 1;
const MS_REMOUNT = 32;
const MS_BIND = 4096;
const MS_REC = 16384;
const EINVAL = 22;
const ENOENT = 2;
const ENOTDIR = 20;
const EISDIR = 21;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export interface RecursiveOption {
  recursive?: boolean;
}

/** umount2 failed with EINVAL because nothing is mounted at the path. */
export class NotMountedError extends SyscallError {
  constructor(target: string) {
    super('umount2', target, EINVAL, 'not mounted');
    this.name = 'NotMountedError';
  }
}

/**
 * Detached copy of the mount (tree) at path, as an O_PATH-like fd (close-on-exec).
 * The last path component is never followed if it is a symlink.
 */
export function openTreeClone(source: string, opts: RecursiveOption = {}): number {
  const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (opts.recursive ? AT_RECURSIVE : 0);
  const fd = libc().openTree(AT_FDCWD, source, flags);
  if (fd === -1) throw sysFail('open_tree', source);
  return fd;
}

/**
 * Detached copy of the mount (tree) at the entry an fd holds (an O_PATH fd of a pinned path): the
 * fd is the one resolution of the source, no path is walked again.
 */
export function openTreeCloneFd(sourceFd: number, label: string, opts: RecursiveOption = {}): number {
  const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | (opts.recursive ? AT_RECURSIVE : 0);
  const fd = libc().openTree(sourceFd, '', flags);
  if (fd === -1) throw sysFail('open_tree', label);
  return fd;
}

/** Idmaps a detached mount with the mapping of usernsFd and makes it private. */
export function setIdmap(fd: number, usernsFd: number, opts: RecursiveOption & { label?: string } = {}): void {
  const attr = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_IDMAP), 0); // attr_set
  attr.writeBigUInt64LE(0n, 8); // attr_clr
  attr.writeBigUInt64LE(BigInt(MS_PRIVATE), 16); // propagation
  attr.writeBigUInt64LE(BigInt(usernsFd), 24); // userns_fd
  const flags = AT_EMPTY_PATH | (opts.recursive ? AT_RECURSIVE : 0);
  if (libc().mountSetattr(fd, '', flags, attr) === -1) throw sysFail('mount_setattr', opts.label ?? `fd ${fd}`);
}

/** Makes the mount at target private; recursive covers the mounts below it. */
export function makePrivate(target: string, opts: RecursiveOption = {}): void {
  const attr = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  attr.writeBigUInt64LE(BigInt(MS_PRIVATE), 16);
  const flags = AT_SYMLINK_NOFOLLOW | (opts.recursive ? AT_RECURSIVE : 0);
  if (libc().mountSetattr(AT_FDCWD, target, flags, attr) === -1) {
    if (lastErrno() !== ENOSYS) throw sysFail('mount_setattr', target);
    if (libc().mount(null, target, null, MS_PRIVATE | (opts.recursive ? MS_REC : 0), null) === -1) throw sysFail('mount(MS_PRIVATE)', target);
  }
}

/** Attaches the detached mount fd at target (target's last component is not followed). */
export function moveMountTo(fd: number, target: string): void {
  if (libc().moveMount(fd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) === -1) throw sysFail('move_mount', target);
}

/** Throws NotMountedError (code EINVAL) when nothing is mounted at target. */
export function unmount(target: string, opts: { detach?: boolean } = {}): void {
  if (libc().umount2(target, UMOUNT_NOFOLLOW | (opts.detach ? MNT_DETACH : 0)) === 0) return;
  const err = sysFail('umount2', target);
  if (err.errno === EINVAL && !isMountPoint(target)) throw new NotMountedError(target);
  throw err;
}

interface StatxInfo {
  mode: number;
  attributes: bigint;
  attributesMask: bigint;
  mntId: number;
}

function statxAt(dfd: number, pathname: string, flags: number, label: string): StatxInfo {
  const buf = statxOrMissing(dfd, pathname, flags, STATX_TYPE | STATX_MNT_ID, label);
  if (buf === undefined) throw new SyscallError('statx', label, ENOENT);
  // struct statx: stx_attributes @8, stx_mode @28, stx_attributes_mask @56, stx_mnt_id @144
  return {
    attributes: buf.readBigUInt64LE(8),
    mode: buf.readUInt16LE(28),
    attributesMask: buf.readBigUInt64LE(56),
    mntId: Number(buf.readBigUInt64LE(144)),
  };
}

/** True if path is the root of a mount; false if it is not or does not exist. Symlinks are not followed. */
export function isMountPoint(target: string): boolean {
  const buf = statxOrMissing(AT_FDCWD, target, 0, STATX_TYPE | STATX_MNT_ID, target);
  if (buf === undefined) return false;
  const st = { attributes: buf.readBigUInt64LE(8), attributesMask: buf.readBigUInt64LE(56) };
  if ((st.attributesMask & BigInt(STATX_ATTR_MOUNT_ROOT)) === 0n) {
    throw new SyscallError('statx', target, EINVAL, 'kernel does not report STATX_ATTR_MOUNT_ROOT');
  }
  return (st.attributes & BigInt(STATX_ATTR_MOUNT_ROOT)) !== 0n;
}

/** Mount id (as in mountinfo's first field) of the mount path lives on. */
export function mountIdOf(target: string): number {
  return statxAt(AT_FDCWD, target, 0, target).mntId;
}

/** Filesystem type (mountinfo's name, e.g. "ext4") of the mount path lives on; 'unknown' if it cannot be told. */
export function fsTypeAt(target: string): string {
  try {
    const id = mountIdOf(target);
    return readMountInfo().find((m) => m.id === id)?.fsType ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface MountInfo {
  id: number;
  parentId: number;
  /** "major:minor" of st_dev */
  dev: string;
  /** path inside the filesystem that is the root of this mount */
  root: string;
  mountPoint: string;
  options: string;
  /** e.g. ["shared:1", "master:2"] */
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of mountinfo fields. */
export function decodeMountInfoField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 4) throw new Error(`/proc/self/mountinfo: malformed line: ${line}`);
    mounts.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      dev: fields[2] ?? '',
      root: decodeMountInfoField(fields[3] ?? ''),
      mountPoint: decodeMountInfoField(fields[4] ?? ''),
      options: fields[5] ?? '',
      optionalFields: fields.slice(6, sep),
      fsType: fields[sep + 1] ?? '',
      source: decodeMountInfoField(fields[sep + 2] ?? ''),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return mounts;
}

export function readMountInfo(): MountInfo[] {
  const file = '/proc/self/mountinfo';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fromNodeError(err, 'open', file);
  }
  return parseMountInfo(text);
}

/** Mount points at or below prefix, in mount order (unmount in reverse). */
export function mountsUnder(prefix: string): string[] {
  const base = path.resolve(prefix);
  const inside = base === '/' ? '/' : `${base}/`;
  return readMountInfo()
    .map((m) => m.mountPoint)
    .filter((mp) => mp === base || mp.startsWith(inside));
}

/**
 * Makes target (an existing dir, or an existing file when source is not a dir)
 * an idmapped, private view of source. source must be an already-resolved path;
 * a symlink as its last component is rejected with ELOOP, never followed.
 */
export function idmappedBindMount(source: string, target: string, usernsFd: number, opts: BindOptions = {}): void {
  attachTree(source, target, usernsFd, opts);
}

/** A private bind mount of source at target (an existing file or dir); never follows a symlink source. */
export function bindMount(source: string, target: string, opts: BindOptions = {}): void {
  attachTree(source, target, undefined, opts);
}

/** A source already opened (O_PATH fd, see host/pinned-path.ts); `label` names it in errors. */
export interface SourceFd {
  readonly fd: number;
  readonly label: string;
}

/** bindMount of the entry an fd holds. */
export function bindMountFd(source: SourceFd, target: string, opts: BindOptions = {}): void {
  attachTree(source, target, undefined, opts);
}

/** idmappedBindMount of the entry an fd holds. */
export function idmappedBindMountFd(source: SourceFd, target: string, usernsFd: number, opts: BindOptions = {}): void {
  attachTree(source, target, usernsFd, opts);
}

export interface BindOptions extends RecursiveOption {
  /**
   * Read-only, set here in the host's user namespace: a container's mount namespace gets it
   * locked, so its root cannot remount the bind read-write (a read-only flag runc sets inside the
   * container can be cleared by the container's root).
   */
  readOnly?: boolean;
}

/**
 * Makes a detached mount (tree) read-only. false: the kernel has no mount_setattr (before 5.12), and
 * the caller remounts the attached mount read-only instead.
 */
function setReadOnly(fd: number, opts: RecursiveOption & { label: string }): boolean {
  const attr = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY), 0); // attr_set
  const flags = AT_EMPTY_PATH | (opts.recursive ? AT_RECURSIVE : 0);
  if (libc().mountSetattr(fd, '', flags, attr) !== -1) return true;
  if (lastErrno() === ENOSYS) return false;
  throw sysFail('mount_setattr(MOUNT_ATTR_RDONLY)', opts.label);
}

/** The pre-5.12 way: the attached bind remounted read-only (its top mount only). */
function remountReadOnly(target: string): void {
  if (libc().mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY, null) === -1) throw sysFail('mount(MS_REMOUNT|MS_RDONLY)', target);
}

function attachTree(from: string | SourceFd, target: string, usernsFd: number | undefined, opts: BindOptions): void {
  const source = typeof from === 'string' ? from : from.label;
  const fd = typeof from === 'string' ? openTreeClone(from, opts) : openTreeCloneFd(from.fd, from.label, opts);
  let remount = false;
  try {
    const src = statxAt(fd, '', AT_EMPTY_PATH, source);
    if ((src.mode & S_IFMT) === S_IFLNK) throw new SyscallError('open_tree', source, ELOOP, 'source is a symlink, refusing to follow it');
    checkTarget(target, (src.mode & S_IFMT) === S_IFDIR);
    if (usernsFd !== undefined) {
      try {
        setIdmap(fd, usernsFd, { recursive: opts.recursive, label: source });
      } catch (err) {
        throw explainIdmapFailure(err, source, opts.recursive ?? false);
      }
    }
    if (opts.readOnly === true) remount = !setReadOnly(fd, { recursive: opts.recursive, label: source });
    moveMountTo(fd, target);
  } finally {
    libc().close(fd);
  }
  try {
    if (remount) remountReadOnly(target);
    // Attaching below a shared mount makes the new mount shared again.
    makePrivate(target, opts);
  } catch (err) {
    libc().umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
    throw err;
  }
}

function explainIdmapFailure(err: unknown, source: string, recursive: boolean): unknown {
  if (!(err instanceof SyscallError) || err.errno !== EINVAL) return err;
  const types = [fsTypeAt(source)];
  if (recursive) {
    for (const mp of mountsUnder(source)) {
      const type = fsTypeAt(mp);
      if (!types.includes(type)) types.push(type);
    }
  }
  const which = types.length === 1 ? `filesystem ${types[0]}` : `one of the filesystems ${types.join(', ')}`;
  return new SyscallError('mount_setattr', source, EINVAL, `idmapped mounts not supported by ${which}`);
}

function checkTarget(target: string, sourceIsDir: boolean): void {
  const mode = statxAt(AT_FDCWD, target, 0, target).mode & S_IFMT;
  if (mode === S_IFLNK) throw new SyscallError('move_mount', target, ELOOP, 'target is a symlink');
  if (sourceIsDir && mode !== S_IFDIR) throw new SyscallError('move_mount', target, ENOTDIR, 'source is a directory, target is not');
  if (!sourceIsDir && mode === S_IFDIR) throw new SyscallError('move_mount', target, EISDIR, 'source is not a directory, target is');
}
