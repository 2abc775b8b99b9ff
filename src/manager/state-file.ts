// Crash-safe state files for sysrunc-mgr.
//
// The API is synchronous on purpose: the daemon serializes requests, the files
// are small, and a sync write makes "persist, then answer" a single step of the
// event loop, so no other request can observe or act on unpersisted state.

import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { writeFileAtomic } from '../common/atomic-file.ts';

export { writeFileAtomic, type WriteFileAtomicOptions } from '../common/atomic-file.ts';


export class StateFileError extends Error {
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.name = 'StateFileError';
    this.path = path;
  }
}

/**
 * durable (default): fsynced, so the file survives a power loss too. Without it the replace is
 * still atomic and survives the manager's own crash (the page cache outlives the process); that
 * is enough for state that a reboot makes moot anyway, such as a running container's mounts.
 */
export function writeJsonAtomic(path: string, value: unknown, options: { durable?: boolean } = {}): void {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`cannot write ${path}: value is not JSON-serializable`);
  writeFileAtomic(path, `${text}\n`, { mode: 0o600, durable: options.durable !== false });
}

/**
 * Reads and validates a JSON state file. Returns undefined if the file does not
 * exist; throws a one-line StateFileError naming the file if it is unreadable,
 * not JSON, or does not match `schema`.
 */
export function readJson<S extends z.ZodType>(path: string, schema: S): z.output<S> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined;
    throw new StateFileError(path, `cannot read state file: ${errorMessage(err)}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(path, `corrupt state file: invalid JSON: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '<root>'}: ${issue.message}`)
      .join('; ');
    throw new StateFileError(path, `corrupt state file: ${oneLine(issues)}`, { cause: parsed.error });
  }
  return parsed.data;
}


export function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && 'code' in err;
}

function errorMessage(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}
