// What a synced-out tree cannot carry by itself, kept in a file next to it in the rootfs.
// overlayfs refuses to create whiteouts (char 0/0) through a mount, so an inner overlay's
// whiteouts cannot be written into Docker's rootfs; and Docker's layer tars keep no xattr but
// security.capability, so `docker commit` would drop user.overlay.opaque and friends. Both are
// recorded here at sync-out and restored at sync-in, so inner images survive stop/commit/run.
import { z } from 'zod';
import type { Whiteout } from './copy-tree.ts';
import type { Xattrs } from '../../host/fs-native.ts';

export const SIDECAR_VERSION = 1;
const MAX_PATH_BYTES = 4096;

/** Sidecar file name for a store directory named `name`, in the same parent directory. */
export function sidecarName(name: string): string {
  return `.${name}.sysrunc-meta.json`;
}

// A relative path: a UTF-8 string when the bytes are valid UTF-8, else base64 of the raw bytes.
const EncodedPath = z.union([z.string(), z.object({ b64: z.string() })]);
const Time = z.tuple([z.number().int(), z.number().int().min(0).max(999_999_999)]);
const EncodedXattrs = z.array(z.tuple([z.string().min(1), z.string()])); // [name, base64 value]

const SidecarSchema = z.object({
  version: z.literal(SIDECAR_VERSION),
  whiteouts: z.array(z.object({
    path: EncodedPath,
    uid: z.number().int().min(0),
    gid: z.number().int().min(0),
    mode: z.number().int().min(0).max(0o7777),
    atime: Time,
    mtime: Time,
    xattrs: EncodedXattrs,
  })),
  xattrs: z.array(z.object({ path: EncodedPath, xattrs: EncodedXattrs })),
});
type SidecarJson = z.infer<typeof SidecarSchema>;

/** Collects a sidecar during sync-out. */
export class SidecarWriter {
  private readonly whiteouts: SidecarJson['whiteouts'] = [];
  private readonly xattrs: SidecarJson['xattrs'] = [];

  addWhiteout(w: Whiteout): void {
    this.whiteouts.push({
      path: encodePath(w.path),
      uid: w.stat.uid,
      gid: w.stat.gid,
      mode: w.stat.mode & 0o7777,
      atime: [Number(w.stat.atimeSec), w.stat.atimeNsec],
      mtime: [Number(w.stat.mtimeSec), w.stat.mtimeNsec],
      xattrs: encodeXattrs(w.xattrs),
    });
  }

  /** Whether addXattrs keeps an xattr of this name: all but security.capability, which Docker keeps. */
  keepsXattr(name: string): boolean {
    return name !== 'security.capability';
  }

  /** Keeps the xattrs Docker's layer format would lose. */
  addXattrs(p: Buffer, xattrs: Xattrs): void {
    const kept = xattrs.filter(([name]) => this.keepsXattr(name));
    if (kept.length > 0) this.xattrs.push({ path: encodePath(p), xattrs: encodeXattrs(kept) });
  }

  isEmpty(): boolean {
    return this.whiteouts.length === 0 && this.xattrs.length === 0;
  }

  toJson(): string {
    const doc: SidecarJson = { version: SIDECAR_VERSION, whiteouts: this.whiteouts, xattrs: this.xattrs };
    return `${JSON.stringify(doc)}\n`;
  }
}

/** A parsed sidecar, indexed the way copyTree's hooks ask for it. */
export class Sidecar {
  private readonly whiteoutsByDir = new Map<string, Whiteout[]>();
  private readonly xattrsByPath = new Map<string, Xattrs>();

  /** Throws a one-line Error naming what is wrong; the caller adds the file name. */
  static parse(text: string): Sidecar {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const parsed = SidecarSchema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new Error(`unexpected content: ${first ? `${first.path.join('.')}: ${first.message}` : 'schema mismatch'}`);
    }
    const s = new Sidecar();
    for (const w of parsed.data.whiteouts) {
      const p = decodePath(w.path);
      const i = p.lastIndexOf(0x2f);
      const dir = i === -1 ? '' : p.subarray(0, i).toString('latin1');
      const list = s.whiteoutsByDir.get(dir) ?? [];
      list.push({
        path: p,
        stat: {
          mode: w.mode, uid: w.uid, gid: w.gid,
          atimeSec: BigInt(w.atime[0]), atimeNsec: w.atime[1],
          mtimeSec: BigInt(w.mtime[0]), mtimeNsec: w.mtime[1],
        },
        xattrs: decodeXattrs(w.xattrs),
      });
      s.whiteoutsByDir.set(dir, list);
    }
    for (const x of parsed.data.xattrs) s.xattrsByPath.set(decodePath(x.path, true).toString('latin1'), decodeXattrs(x.xattrs));
    return s;
  }

  whiteoutsIn(dir: Buffer): readonly Whiteout[] {
    return this.whiteoutsByDir.get(dir.toString('latin1')) ?? [];
  }

  xattrsOf(p: Buffer): Xattrs | undefined {
    return this.xattrsByPath.get(p.toString('latin1'));
  }
}

function encodePath(p: Buffer): SidecarJson['whiteouts'][number]['path'] {
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
