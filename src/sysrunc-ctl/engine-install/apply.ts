// Applies an engine config change under --root: every file written atomically, the originals kept
// in a record so that uninstall puts config.toml / daemon.json back byte for byte, and every file
// put back as it was should a later step fail. --dry-run prints the diff instead.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A file's new content (undefined: remove it); `node` is its path on the node. */
export interface FileChange {
  readonly node: string;
  readonly text: string | undefined;
}

export interface InstallRecord {
  /** The main config's node path and its bytes before install (null: there was none). */
  readonly config: string;
  readonly original: string | null;
  /** sha256 of what install wrote into it (null: install left it unchanged). */
  readonly written: string | null;
  readonly dropIn?: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function underRoot(root: string, node: string): string {
  return path.join(root, node);
}

export function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** The record of an install, beside the engine's config (so a fake node root gets no other directory). */
export function recordNodePath(config: string): string {
  return `${config}.sysrunc-install.json`;
}

export function readRecord(root: string, config: string): InstallRecord | undefined {
  const text = readIfExists(underRoot(root, recordNodePath(config)));
  return text === undefined ? undefined : (JSON.parse(text) as InstallRecord);
}

function writeAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.sysrunc-${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** `diff -u` of each change, with the node's paths. */
export function diffOf(root: string, changes: readonly FileChange[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-ctl-diff-'));
  try {
    return changes
      .map((c, i) => {
        const before = readIfExists(underRoot(root, c.node));
        const a = path.join(dir, `${i}.a`);
        const b = path.join(dir, `${i}.b`);
        writeFileSync(a, before ?? '');
        writeFileSync(b, c.text ?? '');
        const r = spawnSync('diff', ['-u', '--label', before === undefined ? '/dev/null' : c.node, '--label', c.text === undefined ? '/dev/null' : c.node, a, b], { encoding: 'utf8' });
        return r.stdout;
      })
      .join('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes the changes in order; on any failure, every file written so far gets its old bytes back. */
export function applyChanges(root: string, changes: readonly FileChange[]): void {
  const done: Array<{ file: string; before: string | undefined }> = [];
  try {
    for (const c of changes) {
      const file = underRoot(root, c.node);
      done.push({ file, before: readIfExists(file) });
      if (c.text === undefined) rmSync(file, { force: true });
      else writeAtomic(file, c.text);
    }
  } catch (err) {
    for (const { file, before } of done.reverse()) {
      try {
        if (before === undefined) rmSync(file, { force: true });
        else writeAtomic(file, before);
      } catch {
        /* the first error is the one reported */
      }
    }
    throw err;
  }
}
