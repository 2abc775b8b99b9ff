// Reading and rewriting <bundle>/config.json. The caller's config is kept beside the rewritten one
// so that delete can put it back, and a create retried after a crash starts from the original.
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { SysruncError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-file.ts';
import type { Spec } from './spec.ts';
import { validateSpecDocument } from './validate.ts';
import { parseLossless, type LosslessJson } from './json-lossless.ts';

export const CONFIG_NAME = 'config.json';
export const ORIGINAL_CONFIG_NAME = 'config.json.sysrunc-orig';

export interface LoadedBundle {
  readonly dir: string;
  readonly configPath: string;
  readonly spec: Spec;
  /** The caller's config.json bytes, exactly. */
  readonly originalText: string;
  readonly configMode: number;
  /** Serializes a rewritten spec, keeping integers JSON.parse would round. */
  readonly json: LosslessJson;
  /** True when a previous create left the original beside a rewritten config.json. */
  readonly resumed: boolean;
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
  const originalPath = path.join(dir, ORIGINAL_CONFIG_NAME);
  const resumed = existsSync(originalPath);
  const source = resumed ? originalPath : configPath;
  let text: string;
  let configMode: number;
  try {
    text = readFileSync(source, 'utf8');
    configMode = statSync(source).mode & 0o7777;
  } catch (err) {
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: ${describeFsError(err)}`);
  }
  let json: LosslessJson;
  try {
    json = parseLossless(text);
  } catch (err) {
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: invalid JSON: ${(err as Error).message}`);
  }
  const result = validateSpecDocument(json.value);
  if (!result.ok) {
    const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
    throw new SysruncError(`bundle ${dir}: ${path.basename(source)}: not a valid OCI config: ${result.errors[0]}${more}`);
  }
  return { dir, configPath, spec: result.spec, originalText: text, configMode, json, resumed };
}

/** Keeps the original beside config.json (once), then replaces config.json atomically. */
export function writeBundleConfig(bundle: LoadedBundle, spec: Spec): void {
  const originalPath = path.join(bundle.dir, ORIGINAL_CONFIG_NAME);
  if (!existsSync(originalPath)) writeFileAtomic(originalPath, bundle.originalText, { mode: bundle.configMode, durable: false });
  writeFileAtomic(bundle.configPath, bundle.json.stringify(spec), { mode: bundle.configMode, durable: false });
}

/** Puts the caller's config.json back. Returns false when there was nothing to restore. */
export function restoreBundleConfig(bundleDir: string): boolean {
  const originalPath = path.join(bundleDir, ORIGINAL_CONFIG_NAME);
  let text: string;
  let mode: number;
  try {
    text = readFileSync(originalPath, 'utf8');
    mode = statSync(originalPath).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SysruncError(`bundle ${bundleDir}: ${ORIGINAL_CONFIG_NAME}: ${describeFsError(err)}`);
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
