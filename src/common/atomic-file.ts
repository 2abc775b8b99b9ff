// Crash-safe file replacement, shared by the shim (config.json) and the manager (state files).
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { faultPoint } from '../testing/fault.ts';

export interface WriteFileAtomicOptions {
  /** File mode of the result (default 0o600); applied with fchmod, so umask does not interfere. */
  mode?: number;
  /** Owner of the result; left as the writing process' uid/gid when absent. */
  owner?: { uid: number; gid: number };
  /**
   * false: skip the fsyncs, keep only the rename's atomicity. For files on tmpfs or whose loss in a
   * power cut does not matter (an OCI bundle under /run); default true.
   */
  durable?: boolean;
}

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the
 * old or the new content: temp file in the same directory, fsync, rename over,
 * fsync the directory (makes the rename itself durable).
 */
export function writeFileAtomic(path: string, data: string, options: WriteFileAtomicOptions = {}): void {
  const dir = dirname(path);
  // Unique per writer so two processes never write into the same temp file. The name is cut so the
  // temp name stays within NAME_MAX (255) for the longest names (a 250-character container id). The
  // '#' is a character no container id has: a file named after an id is never taken for a temp file.
  const tmpPath = join(dir, `.${basename(path).slice(0, 200)}#${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmpPath, 'wx', options.mode ?? 0o600);
  } catch (err) {
    throw namingFile(path, err);
  }
  try {
    try {
      fchmodSync(fd, options.mode ?? 0o600);
      if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
      const buf = Buffer.from(data, 'utf8');
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (options.durable !== false) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    faultPoint(`write:${basename(path)}:before-rename`);
    renameSync(tmpPath, path);
  } catch (err) {
    try {
      unlinkSync(tmpPath);
    } catch {
      // already renamed or never created; nothing to clean up
    }
    throw namingFile(path, err);
  }
  if (options.durable !== false) fsyncDir(dir);
}

/** The error with the file it was writing named first (a full disk must say which file); errno code kept. */
function namingFile(path: string, err: unknown): Error {
  if (!(err instanceof Error)) return new Error(`write ${path}: ${String(err)}`);
  const named = new Error(`write ${path}: ${err.message.replace(/, (open|write) '[^']*'$/, '').replace(/, write$/, '')}`, { cause: err });
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined ? named : Object.assign(named, { code });
}

/** The temp files writeFileAtomic makes: .<name>#<pid>.<8 hex>.tmp */
const TEMP_FILE = /^\..+#(\d+)\.[0-9a-f]{8}\.tmp$/;
/**
 * The ones versions before 0.3 made, .<name>.<pid>.<8 hex>.tmp: a valid container id can look like
 * that, so they are only recognized in dirs where no file is named after a bare id.
 */
const LEGACY_TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** Whether a directory entry is a temp file of writeFileAtomic (never a file named after a container id). */
export function isAtomicTempFile(name: string): boolean {
  return TEMP_FILE.test(name);
}

/**
 * Removes temp files a writer killed mid-write left in `dir` (not this process's own); returns their
 * paths. Only for a directory one process writes at a time (a manager's state dirs, at its start).
 */
export function removeStaleTempFiles(dir: string, o: { legacyNames?: boolean } = {}): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_FILE.exec(name) ?? (o.legacyNames === false ? null : LEGACY_TEMP_FILE.exec(name));
    if (m === null || Number(m[1]) === process.pid) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(join(dir, name));
    } catch {
      // gone already, or not a file: left alone
    }
  }
  return removed;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
