// The crash journal of a chown by offset: the plan (fsynced before the first chown), then every
// setuid/setgid or file-capability entry before its chown (the kernel clears those on chown, and a
// crash in between would lose them for good), then informational progress lines.
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fromNodeError } from '../../host/libc.ts';
import { fsyncDir, writeFileAtomic } from '../../common/atomic-file.ts';

const IdOffsetSchema = z.object({ uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() });
const BeginSchema = z.object({
  op: z.literal('begin'),
  v: z.literal(1),
  root: z.string().min(1),
  direction: z.enum(['shift', 'revert']),
  offset: IdOffsetSchema,
  size: z.number().int().positive(),
  exclude: z.optional(z.array(z.string())),
});
const SpecialSchema = z.object({
  op: z.literal('special'),
  /** relative to root, UTF-8 for display */
  path: z.string(),
  /** the exact bytes (base64) when path is not valid UTF-8 */
  raw: z.string().optional(),
  ino: z.number(),
  uid: z.number().int(),
  gid: z.number().int(),
  mode: z.number().int(),
  caps: z.string().nullable(),
});
const ProgressSchema = z.object({ op: z.literal('progress'), entries: z.number(), changed: z.number() });
const LineSchema = z.discriminatedUnion('op', [BeginSchema, SpecialSchema, ProgressSchema]);

export type Begin = z.infer<typeof BeginSchema>;
export type Special = z.infer<typeof SpecialSchema>;

export interface Journal {
  begin: Begin;
  specials: Special[];
}

export function readJournal(file: string): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw fromNodeError(err, 'open', file);
  }
  const lines = text.split('\n');
  const parsed: z.infer<typeof LineSchema>[] = [];
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    const result = LineSchema.safeParse(value);
    if (result.success) {
      parsed.push(result.data);
      continue;
    }
    // A crash mid-append leaves at most the final line torn; it was never acted on.
    if (i === lines.length - 1) break;
    throw new Error(`${file}: corrupt chown journal: line ${i + 1} is not a journal record`);
  }
  const [first, ...rest] = parsed;
  if (first?.op !== 'begin') throw new Error(`${file}: corrupt chown journal: no begin record`);
  return { begin: first, specials: rest.filter((l): l is Special => l.op === 'special') };
}

export class JournalWriter {
  private readonly fd: number;

  constructor(private readonly file: string, begin: Begin) {
    // Atomic and fsynced (file and directory): the plan is durable before the first chown.
    writeFileAtomic(file, `${JSON.stringify(begin)}\n`, { mode: 0o600 });
    try {
      this.fd = openSync(file, 'a');
    } catch (err) {
      throw fromNodeError(err, 'open', file);
    }
  }

  /** Durable before the chown it protects. */
  special(rec: Special): void {
    this.append(rec);
    try {
      fsyncSync(this.fd);
    } catch (err) {
      throw fromNodeError(err, 'fsync', this.file);
    }
  }

  // Not fsynced: progress is informational (recovery re-walks the whole tree,
  // since readdir order is no stable cursor and the re-walk is idempotent).
  progress(entries: number, changed: number): void {
    this.append({ op: 'progress', entries, changed });
  }

  private append(rec: object): void {
    try {
      writeSync(this.fd, `${JSON.stringify(rec)}\n`);
    } catch (err) {
      throw fromNodeError(err, 'write', this.file);
    }
  }

  complete(): void {
    closeSync(this.fd);
    try {
      unlinkSync(this.file);
    } catch (err) {
      throw fromNodeError(err, 'unlink', this.file);
    }
    fsyncDir(path.dirname(this.file));
  }

  abandon(): void {
    closeSync(this.fd);
  }
}


/** The journal line for an entry whose chown clears what it records. */
export function specialRecord(rel: Buffer, st: Stats, caps: Buffer | undefined): Special {
  const text = rel.toString('utf8');
  const rec: Special = { op: 'special', path: text, ino: st.ino, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, caps: caps ? caps.toString('base64') : null };
  if (!Buffer.from(text, 'utf8').equals(rel)) rec.raw = rel.toString('base64');
  return rec;
}
