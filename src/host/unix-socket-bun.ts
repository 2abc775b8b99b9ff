// A blocking unix-socket request/reply for the compiled per-call binary, straight through libc.
// Bun's own net module costs the binary ~20 ms of start-up and teardown per call; five libc calls
// through bun:ffi cost about 1 ms. Only loaded under Bun (see manager-client/sync-call.ts).
import { dlopen, FFIType, ptr, read, type Pointer } from 'bun:ffi';
import { errnoName } from './libc.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const EINTR = 4;
const SUN_PATH_MAX = 108;

const { symbols: c } = dlopen('libc.so.6', {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});

function errno(): number {
  return read.i32(c.__errno_location() as Pointer);
}

/** A failed call: `code` is the errno name (ENOENT, ECONNREFUSED...), as Node's errors carry. */
export class SocketCallError extends Error {
  constructor(
    readonly syscall: string,
    readonly code: string,
  ) {
    super(`${syscall}: ${code}`);
  }
}

/** Connects to `socketPath`; returns the fd (close-on-exec). Throws SocketCallError. */
export function connectUnix(socketPath: string, timeoutMs: number): number {
  const pathBytes = Buffer.from(socketPath);
  if (pathBytes.length >= SUN_PATH_MAX) throw new SocketCallError('connect', 'ENAMETOOLONG');
  const fd = Number(c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd < 0) throw new SocketCallError('socket', errnoName(errno()));
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  pathBytes.copy(addr, 2);
  if (Number(c.connect(fd, ptr(addr), 2 + pathBytes.length + 1)) !== 0) {
    const code = errnoName(errno());
    c.close(fd);
    throw new SocketCallError('connect', code);
  }
  // A manager that stops answering must not hang the caller (and dockerd) forever.
  const timeval = Buffer.alloc(16);
  timeval.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
  timeval.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
  c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(timeval), 16);
  return fd;
}

/** Writes the whole request, then reads until the first newline (one reply line). */
export function requestLine(fd: number, line: string): string {
  const out = Buffer.from(line);
  let off = 0;
  while (off < out.length) {
    const n = Number(c.write(fd, ptr(out.subarray(off)), out.length - off));
    if (n < 0) {
      if (errno() === EINTR) continue;
      throw new SocketCallError('write', errnoName(errno()));
    }
    off += n;
  }
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = Number(c.read(fd, ptr(buf), buf.length));
    if (n < 0) {
      const e = errno();
      if (e === EINTR) continue;
      throw new SocketCallError('read', e === 11 ? 'ETIMEDOUT' : errnoName(e));
    }
    if (n === 0) throw new SocketCallError('read', 'EOF');
    const chunk = Buffer.from(buf.subarray(0, n));
    const newline = chunk.indexOf(10);
    if (newline !== -1) {
      chunks.push(chunk.subarray(0, newline));
      return Buffer.concat(chunks).toString('utf8');
    }
    chunks.push(chunk);
  }
}

export function closeFd(fd: number): void {
  c.close(fd);
}
