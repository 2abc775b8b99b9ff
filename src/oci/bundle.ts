// Reading <bundle>/config.json. sysrunc never writes to the caller's bundle: the manager writes the
// transformed config into a bundle of its own (manager/prepared-bundles.ts), so a failed create
// leaves the caller's bundle exactly as it was.
import { closeSync, constants, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { SysruncError } from '../common/errors.ts';
import { writeFileAtomic } from '../common/atomic-file.ts';
import type { Spec } from './spec.ts';
import { validateInputSpecDocument } from './runc-accepted.ts';
import { parseLossless, type LosslessJson } from './json-lossless.ts';

export const CONFIG_NAME = 'config.json';
/** Where sysrunc before 0.2 kept the caller's config while config.json was rewritten in place. */
export const LEGACY_ORIGINAL_CONFIG_NAME = 'config.json.sysrunc-orig';
/**
 * The largest config.json read. runc has no limit, but the manager reads callers' bundles and must
 * not be made to allocate without bound; real configs are a few KiB.
 */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface LoadedBundle {
  readonly dir: string;
  readonly configPath: string;
  readonly spec: Spec;
  /** Serializes a rewritten spec, keeping integers JSON.parse would round. */
  readonly json: LosslessJson;
}

export function loadBundle(bundleArg: string, cwd = process.cwd()): LoadedBundle {
  const dir = path.resolve(cwd, bundleArg);
  let stat;
  try {
    stat = statSync(dir);
  } catch (err) {
    throw new SysruncError(`bundle ${dir}: ${describeFsError(err)}`);
  }
  if (!stat.isDirectory()) throw new SysruncError(`bundle ${dir}: not a directory`);

  const configPath = path.join(dir, CONFIG_NAME);
  const source = configPath;
  let text: string;
  try {
    text = readCapped(source, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof SysruncError) throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: ${err.message}`);
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: ${describeFsError(err)}`);
  }
  let json: LosslessJson;
  try {
    json = parseLossless(text);
  } catch (err) {
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: invalid JSON: ${(err as Error).message}`);
  }
  const result = validateInputSpecDocument(json.value);
  if (!result.ok) {
    const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: not a valid OCI config: ${result.errors[0]}${more}`);
  }
  return { dir, configPath, spec: result.spec, json };
}

/**
 * Reads a regular file of at most `limit` bytes as UTF-8. Reads at most limit + 1 bytes whatever
 * the file claims, so a file that grows after fstat is refused too, and a FIFO never blocks.
 */
function readCapped(file: string, limit: number): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    // A directory is left to read(2), which says EISDIR as it always did.
    if (!st.isFile() && !st.isDirectory()) throw new SysruncError('not a regular file');
    const tooLarge = () => new SysruncError(`larger than the ${limit / (1024 * 1024)} MiB sysrunc reads (${st.size} bytes)`);
    if (st.size > limit) throw tooLarge();
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      length += n;
      if (length > limit) throw tooLarge();
    }
    return Buffer.concat(chunks, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Puts back a config.json that sysrunc before 0.2 rewrote in place (containers created before an
 * upgrade). Returns false when there was nothing to restore.
 */
export function restoreLegacyBundleConfig(bundleDir: string): boolean {
  const originalPath = path.join(bundleDir, LEGACY_ORIGINAL_CONFIG_NAME);
  if (!existsSync(originalPath)) return false;
  let text: string;
  let mode: number;
  try {
    text = readFileSync(originalPath, 'utf8');
    mode = statSync(originalPath).mode & 0o7777;
  } catch (err) {
    throw new SysruncError(`bundle ${bundleDir}: ${LEGACY_ORIGINAL_CONFIG_NAME}: ${describeFsError(err)}`);
  }
  writeFileAtomic(path.join(bundleDir, CONFIG_NAME), text, { mode, durable: false });
  unlinkSync(originalPath);
  return true;
}

export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && typeof e.syscall === 'string') {
    const text = e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return `${e.syscall}: ${e.code} (${text})`;
  }
  return String(e?.message ?? err);
}
