// A read-only, shared bind mount of one file: the building block of the lxcfs views. Shared, so that
// a later mount stacked on top of it propagates into every container that bound it (their copies
// are slaves of its peer group); read-only, nosuid, nodev and noexec set here, in the host's user
// namespace, so a container's copy has them locked.
import {
  AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_SIZE_VER0, MNT_DETACH, UMOUNT_NOFOLLOW,
  libc, sysFail,
} from './libc.ts';
import { moveMountTo, openTreeClone } from './mount.ts';

const MOUNT_ATTR_NOSUID = 0x2;
const MOUNT_ATTR_NODEV = 0x4;
const MOUNT_ATTR_NOEXEC = 0x8;
const MS_SHARED = 1 << 20;

/** Binds source (a file) onto target, read-only and shared; target may already carry mounts (it stacks). */
export function sharedReadOnlyBind(source: string, target: string): void {
  const fd = openTreeClone(source);
  try {
    const attr = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
    attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC), 0);
    if (libc().mountSetattr(fd, '', AT_EMPTY_PATH, attr) === -1) throw sysFail('mount_setattr(ro,nosuid,nodev,noexec)', source);
    moveMountTo(fd, target);
  } finally {
    libc().close(fd);
  }
  const shared = Buffer.alloc(MOUNT_ATTR_SIZE_VER0);
  shared.writeBigUInt64LE(BigInt(MS_SHARED), 16);
  if (libc().mountSetattr(AT_FDCWD, target, AT_SYMLINK_NOFOLLOW, shared) === -1) {
    const err = sysFail('mount_setattr(MS_SHARED)', target);
    libc().umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
    throw err;
  }
}
