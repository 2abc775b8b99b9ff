// A process's output as the supervisor keeps it (native/supervise.c): per stream, the current file
// <stream>, the one before it <stream>.1, and <stream>.base, the stream offset of the current
// file's first byte (absent: 0). Offsets the API hands out are stream offsets, so a client resumes
// at the same place across rotations; output older than <stream>.1 was dropped.
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';

const READ_CHUNK = 64 * 1024;
/** A rotation is a rename, an open and a small file write: it is over long before this. */
const ROTATION_RETRIES = 50;

export interface OutputChunk {
  /** Stream offset of data's first byte: the offset asked for, or later if what was there was dropped. */
  readonly start: number;
  readonly data: Buffer;
}

async function baseOf(dir: string, stream: string): Promise<number> {
  try {
    return Number.parseInt(await readFile(path.join(dir, `${stream}.base`), 'utf8'), 10) || 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new Error(`read ${path.join(dir, `${stream}.base`)}: ${(err as Error).message}`);
  }
}

/** Up to READ_CHUNK bytes of file at position; the file's size; undefined if it does not exist. */
async function readAt(file: string, position: number): Promise<{ data: Buffer; size: number } | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`open ${file}: ${(err as Error).message}`);
  }
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(READ_CHUNK);
    const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, position);
    return { data: buf.subarray(0, bytesRead), size };
  } finally {
    await fh.close();
  }
}

/**
 * Output of stream from stream offset `offset` on (one chunk; empty when there is nothing new).
 * The base is read before and after the file: if a rotation ran in between, it reads again.
 */
export async function readOutput(dir: string, stream: 'stdout' | 'stderr', offset: number): Promise<OutputChunk> {
  for (let i = 0; i < ROTATION_RETRIES; i++) {
    const base = await baseOf(dir, stream);
    let chunk: OutputChunk | undefined;
    let from = offset;
    if (from < base) {
      // In the file before the current one, whose last byte is just below base; or dropped.
      const older = path.join(dir, `${stream}.1`);
      const olderBase = base - ((await readAt(older, 0))?.size ?? 0);
      from = Math.max(from, olderBase);
      if (from < base) chunk = { start: from, data: (await readAt(older, from - olderBase))?.data.subarray(0, base - from) ?? Buffer.alloc(0) };
    }
    chunk ??= { start: Math.max(from, base), data: (await readAt(path.join(dir, stream), Math.max(from, base) - base))?.data ?? Buffer.alloc(0) };
    if (chunk !== undefined && (await baseOf(dir, stream)) === base) return chunk;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`${path.join(dir, stream)}: still rotating after ${ROTATION_RETRIES} reads`);
}
