// What a synced-out tree cannot carry by itself, kept in a file next to it in the rootfs.
// overlayfs refuses to create whiteouts (char 0/0) through a mount, so an inner overlay's
// whiteouts cannot be written into Docker's rootfs; and Docker's layer tars keep no xattr but
// security.capability, so `docker commit` would drop user.overlay.opaque and friends. Both are
// recorded here at sync-out and restored at sync-in, so inner images survive stop/commit/run.
//
// The file is JSON lines (version 2): a header line, then one entry a line, each at most
// MAX_LINE_BYTES, written and read one at a time: a store with millions of entries costs the
// manager no more memory than one line. Files of version 1 (one JSON document, written by sysrunc
// before 0.3; a committed image may carry one) are still read, whole, with their old size cap.
import { closeSync, fsyncSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Whiteout } from './copy-tree.ts';
import type { Xattrs } from '../../host/fs-native.ts';
import { fromNodeError } from '../../host/libc.ts';

export const SIDECAR_VERSION = 2;
const HEADER = `{"sysrunc-sidecar":${SIDECAR_VERSION}}`;
const MAX_PATH_BYTES = 4096;
/** One entry's line; an entry whose xattrs need more is split over several lines. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** A version 1 file is parsed whole: its old cap. */
export const MAX_LEGACY_BYTES = 256 * 1024 * 1024;
const READ_CHUNK = 64 * 1024;
const WRITE_BUFFER = 256 * 1024;

/** Sidecar file name for a store directory named `name`, in the same parent directory. */
export function sidecarName(name: string): string {
  return `.${name}.sysrunc-meta.json`;
}

/** One recorded fact: a whiteout to recreate, or xattrs to set on an entry of the tree. */
export type SidecarEntry =
  | { readonly kind: 'whiteout'; readonly whiteout: Whiteout }
  | { readonly kind: 'xattrs'; readonly path: Buffer; readonly xattrs: Xattrs };

// A relative path: a UTF-8 string when the bytes are valid UTF-8, else base64 of the raw bytes.
const EncodedPath = z.union([z.string(), z.object({ b64: z.string() })]);
const Time = z.tuple([z.number().int(), z.number().int().min(0).max(999_999_999)]);
const EncodedXattrs = z.array(z.tuple([z.string().min(1), z.string()])); // [name, base64 value]
const WhiteoutJson = z.object({
  path: EncodedPath,
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  mode: z.number().int().min(0).max(0o7777),
  atime: Time,
  mtime: Time,
  xattrs: EncodedXattrs,
});
const XattrsJson = z.object({ path: EncodedPath, xattrs: EncodedXattrs });
const LineSchema = z.union([z.object({ w: WhiteoutJson }).strict(), z.object({ x: XattrsJson }).strict()]);
const LegacySchema = z.object({ version: z.literal(1), whiteouts: z.array(WhiteoutJson), xattrs: z.array(XattrsJson) });

/**
 * Writes a sidecar during sync-out, one line per entry as it comes, into a temp file beside it;
 * commit() puts it in place (or removes the old one when nothing was recorded), abandon() drops it.
 * `dir` is the directory's path (e.g. /proc/self/fd/N of a pinned parent), `label` its shown name.
 */
export class SidecarWriter {
  private readonly tmp: string;
  private readonly fd: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private entries = 0;

  constructor(private readonly dir: string, private readonly name: string, private readonly label: string) {
    removeStaleTemps(dir, name);
    this.tmp = `${dir}/.${name}#${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      this.fd = openSync(this.tmp, 'wx', 0o600);
    } catch (err) {
      throw fromNodeError(err, 'open', `${label}/${name} (temp file)`);
    }
    this.push(HEADER);
  }

  addWhiteout(w: Whiteout): void {
    const [first, ...rest] = chunkXattrs(encodeXattrs(w.xattrs));
    this.entry({
      w: {
        path: encodePath(w.path), uid: w.stat.uid, gid: w.stat.gid, mode: w.stat.mode & 0o7777,
        atime: [Number(w.stat.atimeSec), w.stat.atimeNsec], mtime: [Number(w.stat.mtimeSec), w.stat.mtimeNsec], xattrs: first ?? [],
      },
    });
    for (const part of rest) this.entry({ x: { path: encodePath(w.path), xattrs: part } });
  }

  /** Whether addXattrs keeps an xattr of this name: all but security.capability, which Docker keeps. */
  keepsXattr(name: string): boolean {
    return name !== 'security.capability';
  }

  /** Keeps the xattrs Docker's layer format would lose. */
  addXattrs(p: Buffer, xattrs: Xattrs): void {
    const kept = xattrs.filter(([name]) => this.keepsXattr(name));
    if (kept.length === 0) return;
    for (const part of chunkXattrs(encodeXattrs(kept))) this.entry({ x: { path: encodePath(p), xattrs: part } });
  }

  isEmpty(): boolean {
    return this.entries === 0;
  }

  /** Makes the sidecar durable and puts it in place; with no entry, removes it instead. */
  commit(): void {
    const file = `${this.dir}/${this.name}`;
    try {
      if (this.isEmpty()) {
        this.abandon();
        try {
          unlinkSync(file);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        return;
      }
      this.flush();
      fsyncSync(this.fd);
      closeSync(this.fd);
      renameSync(this.tmp, file);
    } catch (err) {
      this.abandon();
      throw fromNodeError(err, 'write', `${this.label}/${this.name}`);
    }
  }

  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      // closed by commit already
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // renamed, or never written
    }
  }

  private entry(line: z.infer<typeof LineSchema>): void {
    this.entries++;
    this.push(JSON.stringify(line));
  }

  private push(line: string): void {
    this.pending.push(line, '\n');
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= WRITE_BUFFER) this.flush();
  }

  private flush(): void {
    if (this.pendingBytes === 0) return;
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      throw fromNodeError(err, 'write', `${this.label}/${this.name}`);
    }
  }
}

/** Temp files a writer killed mid-write left beside the sidecar (they would show in the layer). */
function removeStaleTemps(dir: string, name: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(`.${name}#`) || !n.endsWith('.tmp')) continue;
    try {
      unlinkSync(`${dir}/${n}`);
    } catch {
      // gone already
    }
  }
}

/** Splits encoded xattrs so that each line stays well under MAX_LINE_BYTES (a value is at most 64 KiB). */
function chunkXattrs(x: Array<[string, string]>): Array<Array<[string, string]>> {
  const out: Array<Array<[string, string]>> = [];
  let cur: Array<[string, string]> = [];
  let bytes = 0;
  for (const pair of x) {
    const size = pair[0].length + pair[1].length + 8;
    if (cur.length > 0 && bytes + size > MAX_LINE_BYTES / 2) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(pair);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The entries of the sidecar open at fd, one at a time (version 2), or of a version 1 file read
 * whole. Throws a one-line Error naming what is wrong; the caller adds the file name.
 */
export function* readSidecarEntries(fd: number): Generator<SidecarEntry> {
  const lines = lineReader(fd);
  const first = lines.next();
  if (first.done === true) return;
  if (first.value !== HEADER) {
    yield* legacyEntries(first.value, lines);
    return;
  }
  let n = 1;
  for (const line of lines) {
    n++;
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new Error(`line ${n}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parsed = LineSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`line ${n}: unexpected content: ${firstIssue(parsed.error)}`);
    try {
      yield 'w' in parsed.data ? { kind: 'whiteout', whiteout: decodeWhiteout(parsed.data.w) } : decodeXattrEntry(parsed.data.x);
    } catch (err) {
      throw new Error(`line ${n}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

function* legacyEntries(firstLine: string, rest: Iterator<string>): Generator<SidecarEntry> {
  let text = firstLine;
  for (let r = rest.next(); r.done !== true; r = rest.next()) text += `\n${r.value}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = LegacySchema.safeParse(raw);
  if (!parsed.success) throw new Error(`unexpected content: ${firstIssue(parsed.error)}`);
  for (const w of parsed.data.whiteouts) yield { kind: 'whiteout', whiteout: decodeWhiteout(w) };
  for (const x of parsed.data.xattrs) yield decodeXattrEntry(x);
}

/**
 * Lines of fd, read in chunks. A version 2 line longer than MAX_LINE_BYTES is an error; the first
 * line may be a whole version 1 document, up to MAX_LEGACY_BYTES.
 */
function* lineReader(fd: number): Generator<string> {
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let limit: number | undefined; // decided by the file's first bytes
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    let chunk = buf.subarray(0, n);
    limit ??= chunk.subarray(0, HEADER.length + 1).equals(Buffer.from(`${HEADER}\n`)) ? MAX_LINE_BYTES : MAX_LEGACY_BYTES;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a)) {
      carry.push(chunk.subarray(0, nl));
      yield Buffer.concat(carry).toString('utf8');
      limit = MAX_LINE_BYTES;
      carry = [];
      carryBytes = 0;
      chunk = chunk.subarray(nl + 1);
    }
    carry.push(Buffer.from(chunk));
    carryBytes += chunk.length;
    if (carryBytes > limit) throw new Error(limit === MAX_LEGACY_BYTES ? `larger than ${MAX_LEGACY_BYTES} bytes` : `a line longer than ${MAX_LINE_BYTES} bytes`);
  }
  if (carryBytes > 0) yield Buffer.concat(carry).toString('utf8');
}

function firstIssue(error: z.ZodError): string {
  const first = error.issues[0];
  return first ? `${first.path.join('.')}: ${first.message}` : 'schema mismatch';
}

function decodeWhiteout(w: z.infer<typeof WhiteoutJson>): Whiteout {
  return {
    path: decodePath(w.path),
    stat: {
      mode: w.mode, uid: w.uid, gid: w.gid,
      atimeSec: BigInt(w.atime[0]), atimeNsec: w.atime[1],
      mtimeSec: BigInt(w.mtime[0]), mtimeNsec: w.mtime[1],
    },
    xattrs: decodeXattrs(w.xattrs),
  };
}

function decodeXattrEntry(x: z.infer<typeof XattrsJson>): SidecarEntry {
  return { kind: 'xattrs', path: decodePath(x.path, true), xattrs: decodeXattrs(x.xattrs) };
}

function encodePath(p: Buffer): z.infer<typeof EncodedPath> {
  if (p.length === 0) return '.'; // the tree's root
  const text = p.toString('utf8');
  return Buffer.from(text, 'utf8').equals(p) ? text : { b64: p.toString('base64') };
}

/**
 * Relative, no empty, "." or ".." component: a sidecar can only name entries inside its tree.
 * "." alone is the root itself, allowed where `root` is.
 */
function decodePath(e: z.infer<typeof EncodedPath>, root = false): Buffer {
  if (root && e === '.') return Buffer.alloc(0);
  const p = typeof e === 'string' ? Buffer.from(e, 'utf8') : Buffer.from(e.b64, 'base64');
  const shown = JSON.stringify(typeof e === 'string' ? e : e.b64);
  if (p.length === 0 || p.length > MAX_PATH_BYTES || p.includes(0)) throw new Error(`invalid path ${shown}`);
  for (const part of p.toString('latin1').split('/')) {
    if (part === '' || part === '.' || part === '..') throw new Error(`path ${shown} is not a plain relative path`);
  }
  return p;
}

function encodeXattrs(x: Xattrs): Array<[string, string]> {
  return x.map(([name, value]) => [name, value.toString('base64')]);
}

function decodeXattrs(x: Array<[string, string]>): Xattrs {
  return x.map(([name, value]) => [name, Buffer.from(value, 'base64')]);
}
