// /etc/subuid and /etc/subgid: parsing, and reserving sysrunc's own range.

import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { isErrnoException, writeFileAtomic } from './state-file.ts';

/** A contiguous range of ids [start, start + size). */
export interface IdRange {
  start: number;
  size: number;
}

export interface SubidEntry extends IdRange {
  /** User name or numeric uid, as written in the file. */
  owner: string;
  /** 1-based line number in the file. */
  line: number;
}

export interface EnsureSysruncRangeOptions {
  subuidPath: string;
  subgidPath: string;
  passwdPath: string;
  groupPath: string;
  /** Owner of the range (default 'sysrunc'). */
  user?: string;
  /** Ids to reserve if the user has no range yet (default DEFAULT_SYSRUNC_RANGE_SIZE). */
  wantSize?: number;
  /** Lowest id a new range may start at (default DEFAULT_SYSRUNC_RANGE_MIN_START). */
  minStart?: number;
  /** A new range must end at or below this id, exclusive (default DEFAULT_SYSRUNC_RANGE_MAX_END). */
  maxEnd?: number;
}

export interface SysruncRanges {
  uidRanges: IdRange[];
  gidRanges: IdRange[];
  /** True if this call appended lines to subuid and/or subgid. */
  added: boolean;
}

/** 2^26 ids: 1024 containers of 65536 ids each. */
export const DEFAULT_SYSRUNC_RANGE_SIZE = 2 ** 26;
/**
 * 0x10000000: far above useradd's first allocations (100000 + 65536 per user)
 * and host uids, so a fresh range rarely has to dodge anything.
 */
export const DEFAULT_SYSRUNC_RANGE_MIN_START = 0x10000000;
/** Ids >= 2^31 break tools that treat uid_t as signed. */
export const DEFAULT_SYSRUNC_RANGE_MAX_END = 2 ** 31;

/** First id past the uid/gid space; 2^32 - 1 itself is the invalid id (uid_t)-1. */
const ID_SPACE_END = 2 ** 32 - 1;

export class SubidFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubidFileError';
  }
}

/**
 * Parses subuid/subgid text. Blank lines and lines starting with '#' are
 * skipped; any other line must be `owner:start:count` with decimal numbers.
 */
export function parseSubidFile(text: string, fileName: string): SubidEntry[] {
  const entries: SubidEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${fileName}:${i + 1}`;
    const fields = line.split(':');
    if (fields.length !== 3) {
      throw new SubidFileError(`${where}: malformed entry "${line}": expected owner:start:count`);
    }
    const [owner = '', startText = '', countText = ''] = fields;
    if (owner === '') throw new SubidFileError(`${where}: malformed entry "${line}": empty owner`);
    const start = parseDecimal(startText, ID_SPACE_END);
    const size = parseDecimal(countText, 2 ** 32);
    if (start === undefined || size === undefined) {
      throw new SubidFileError(`${where}: malformed entry "${line}": start and count must be decimal integers`);
    }
    if (start + size > 2 ** 32) {
      throw new SubidFileError(`${where}: malformed entry "${line}": range goes past 2^32`);
    }
    entries.push({ owner, start, size, line: i + 1 });
  }
  return entries;
}

/** Reads and parses a subuid/subgid file; a missing file has no entries. */
export function readSubidFile(path: string): SubidEntry[] {
  const text = readTextIfExists(path);
  return text === undefined ? [] : parseSubidFile(text, path);
}

/** Ids (3rd field) of /etc/passwd or /etc/group text; lines that do not parse are skipped. */
export function parseIdColumn(text: string): number[] {
  const ids: number[] = [];
  for (const line of text.split('\n')) {
    const id = parseId(line.split(':')[2] ?? '');
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/**
 * Returns the subordinate uid and gid ranges of `user` (default 'sysrunc'),
 * reserving a fresh range in subuid and/or subgid first if it has none there.
 * A new range is the lowest one at or above `minStart` that overlaps no
 * entry of any user in either file and no uid/gid listed in passwd/group; the
 * same range is used for uids and gids. Entries are matched by user name or
 * by the user's numeric uid from passwd. Holds shadow's lock files while
 * editing, so it does not race useradd/usermod.
 */
export function ensureSysruncRange(options: EnsureSysruncRangeOptions): SysruncRanges {
  const user = options.user ?? 'sysrunc';
  const wantSize = options.wantSize ?? DEFAULT_SYSRUNC_RANGE_SIZE;
  const minStart = options.minStart ?? DEFAULT_SYSRUNC_RANGE_MIN_START;
  const maxEnd = options.maxEnd ?? DEFAULT_SYSRUNC_RANGE_MAX_END;
  if (!/^[^:\s]+$/.test(user)) throw new SubidFileError(`invalid subid owner name "${user}"`);
  if (!Number.isSafeInteger(wantSize) || wantSize < 1) {
    throw new SubidFileError(`invalid subid range size ${wantSize}: must be a positive integer`);
  }
  if (!Number.isSafeInteger(minStart) || minStart < 1) {
    throw new SubidFileError(`invalid minimum range start ${minStart}: must be an integer >= 1 (id 0 is host root)`);
  }
  if (!Number.isSafeInteger(maxEnd) || maxEnd > ID_SPACE_END) {
    throw new SubidFileError(`invalid range end ${maxEnd}: must be an integer <= 2^32-1`);
  }

  return withShadowLock(options.subuidPath, () =>
    withShadowLock(options.subgidPath, () => {
      const passwdText = readTextIfExists(options.passwdPath) ?? '';
      const groupText = readTextIfExists(options.groupPath) ?? '';
      const userUid = findUid(passwdText, user);
      const isOwner = (e: SubidEntry): boolean => e.owner === user || (userUid !== undefined && e.owner === String(userUid));

      const subuid = readSubidFile(options.subuidPath);
      const subgid = readSubidFile(options.subgidPath);
      let uidRanges = ownRanges(subuid, isOwner);
      let gidRanges = ownRanges(subgid, isOwner);
      if (uidRanges.length > 0 && gidRanges.length > 0) return { uidRanges, gidRanges, added: false };

      const blocked: IdRange[] = [
        ...subuid.filter((e) => !isOwner(e)),
        ...subgid.filter((e) => !isOwner(e)),
        ...parseIdColumn(passwdText).map((id) => ({ start: id, size: 1 })),
        ...parseIdColumn(groupText).map((id) => ({ start: id, size: 1 })),
      ];
      // If only one file has our entries, mirror them in the other when free.
      const preferred = [...uidRanges, ...gidRanges];
      const range = pickFreeRange(blocked, wantSize, minStart, maxEnd, preferred);
      if (range === undefined) {
        throw new SubidFileError(
          `no free range of ${wantSize} ids in [${minStart}, ${maxEnd}) for ${user} that overlaps no entry in ` +
            `${options.subuidPath}, ${options.subgidPath} and no id in ${options.passwdPath}, ${options.groupPath}`,
        );
      }
      const line = `${user}:${range.start}:${range.size}`;
      if (uidRanges.length === 0) {
        appendLine(options.subuidPath, line);
        uidRanges = [range];
      }
      if (gidRanges.length === 0) {
        appendLine(options.subgidPath, line);
        gidRanges = [{ ...range }];
      }
      return { uidRanges, gidRanges, added: true };
    }),
  );
}

function ownRanges(entries: SubidEntry[], isOwner: (e: SubidEntry) => boolean): IdRange[] {
  return entries
    .filter((e) => isOwner(e) && e.size > 0)
    .map((e) => ({ start: e.start, size: e.size }))
    .sort((a, b) => a.start - b.start);
}

/**
 * Lowest free [start, start+size) within [minStart, maxEnd); a free range from
 * `preferred` (our entries in the other file) wins, so uid and gid ranges match.
 */
function pickFreeRange(
  blocked: IdRange[],
  size: number,
  minStart: number,
  maxEnd: number,
  preferred: IdRange[],
): IdRange | undefined {
  const sorted = blocked.filter((r) => r.size > 0).sort((a, b) => a.start - b.start);
  const isFree = (c: IdRange): boolean =>
    c.start >= 1 && c.start + c.size <= ID_SPACE_END && sorted.every((r) => r.start + r.size <= c.start || r.start >= c.start + c.size);
  for (const c of preferred) if (isFree(c)) return { start: c.start, size: c.size };

  let candidate = minStart;
  for (const r of sorted) {
    if (r.start + r.size <= candidate) continue;
    if (r.start >= candidate + size) break;
    candidate = r.start + r.size;
  }
  return candidate + size <= maxEnd ? { start: candidate, size } : undefined;
}

function appendLine(path: string, line: string): void {
  const old = readTextIfExists(path) ?? '';
  const sep = old === '' || old.endsWith('\n') ? '' : '\n';
  let mode = 0o644;
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = statSync(path);
    mode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (err) {
    if (!(isErrnoException(err) && err.code === 'ENOENT')) throw err;
  }
  writeFileAtomic(path, `${old}${sep}${line}\n`, owner ? { mode, owner } : { mode });
}

/**
 * Takes shadow's lock (`<path>.lock` holding the owner's pid, as in shadow's
 * commonio), breaking it only if that pid no longer exists.
 */
function withShadowLock<T>(path: string, fn: () => T): T {
  const lockPath = `${path}.lock`;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx', 0o600);
    } catch (err) {
      if (!(isErrnoException(err) && err.code === 'EEXIST') || attempt > 0) {
        throw new SubidFileError(`cannot lock ${path}: ${lockPath}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const holder = Number.parseInt(readTextIfExists(lockPath) ?? '', 10);
      if (Number.isInteger(holder) && holder > 0 && processExists(holder)) {
        throw new SubidFileError(`cannot lock ${path}: ${lockPath} is held by running process ${holder}`);
      }
      try {
        unlinkSync(lockPath);
      } catch {
        // someone else removed the stale lock first; retry anyway
      }
      continue;
    }
    try {
      writeSync(fd, String(process.pid));
    } finally {
      closeSync(fd);
    }
    try {
      return fn();
    } finally {
      unlinkSync(lockPath);
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !(isErrnoException(err) && err.code === 'ESRCH');
  }
}

function findUid(passwdText: string, user: string): number | undefined {
  for (const line of passwdText.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === user) return parseId(fields[2] ?? '');
  }
  return undefined;
}

function parseId(text: string): number | undefined {
  return parseDecimal(text, ID_SPACE_END);
}

function parseDecimal(text: string, max: number): number | undefined {
  if (!/^\d{1,20}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined;
    throw err;
  }
}
