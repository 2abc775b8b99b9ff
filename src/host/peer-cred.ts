// Who is on the other end of a connected unix socket (SO_PEERCRED: the peer's pid, uid and gid at
// connect time, as the kernel recorded them; the peer cannot forge them).
import type { Socket } from 'node:net';
import { libc, SO_PEERCRED, SOL_SOCKET, sysFail } from './libc.ts';

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } */
const UCRED_SIZE = 12;

/** The peer credentials of a connected unix socket fd. */
export function peerCred(fd: number): PeerCred {
  const buf = Buffer.alloc(UCRED_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(UCRED_SIZE);
  if (libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) throw sysFail('getsockopt(SO_PEERCRED)', `fd ${fd}`);
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}

/** The fd under a node:net socket (libuv's handle; Node has no public accessor for it). */
export function socketFd(socket: Socket): number {
  const handle: unknown = Reflect.get(socket, '_handle');
  const fd: unknown = typeof handle === 'object' && handle !== null ? Reflect.get(handle, 'fd') : undefined;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor (closed, or not a unix socket)');
  return fd;
}

/** The peer credentials of an accepted node:net unix socket. */
export function socketPeerCred(socket: Socket): PeerCred {
  return peerCred(socketFd(socket));
}
