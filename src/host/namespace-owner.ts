// Which user namespace owns a namespace: ioctl(NS_GET_USERNS) on the namespace's file
// (ioctl_ns(2)), as the inode of the owning user namespace's file.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { libc, sysFail } from './libc.ts';

/** _IO(0xb7, 0x1): an fd of the user namespace that owns the namespace of the fd it is asked of. */
const NS_GET_USERNS = 0xb701;

export interface NamespaceInode {
  readonly dev: number;
  readonly ino: number;
}

/** The owning user namespace of the namespace at nsPath (a /proc/<pid>/ns/* or bind-mounted ns file). */
export function owningUserNamespace(nsPath: string): NamespaceInode {
  const fd = openSync(nsPath, 'r');
  try {
    const owner = libc().ioctl(fd, NS_GET_USERNS);
    if (owner < 0) throw sysFail('ioctl NS_GET_USERNS', nsPath);
    try {
      const st = fstatSync(owner);
      return { dev: st.dev, ino: st.ino };
    } finally {
      closeSync(owner);
    }
  } finally {
    closeSync(fd);
  }
}
