// Mounting an overlay the way this kernel accepts it. From 6.8 on, overlay takes one layer per
// fsconfig call (`lowerdir+`), so neither fsconfig's 256-byte string cap nor mount(2)'s one-page
// option string limits the number of layers. Older kernels only know the colon-joined `lowerdir=`:
// there the overlay is mounted with mount(2), layers named relative to a short base directory
// (the way Docker's overlay2 uses its short `l/` links) so that a long list still fits a page.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SyscallError, libc, sysFail } from './libc.ts';
import { fsconfig, fsmountCreate, fsopen, mountFs, type FsParam } from './fsmount.ts';

/** How the layers are passed: one `lowerdir+` each (6.8+), or one colon-joined `lowerdir=` (legacy). */
export type LowerdirSyntax = 'lowerdir+' | 'legacy';

export interface OverlayLayers {
  /** Topmost first. */
  readonly lowerdirs: readonly string[];
  readonly upperdir?: string | undefined;
  readonly workdir?: string | undefined;
  /** Other options; an empty value is a flag without a value (e.g. volatile). */
  readonly options: Readonly<Record<string, string>>;
}

/** The environment variable that makes the manager use the pre-6.8 way on any kernel (tests, CI). */
export const FORCE_LEGACY_ENV = 'SYSRUNC_MGR_OVERLAY_LOWERDIR';

// mount(2) copies at most one page of option data.
const MOUNT_DATA_MAX = 4095;
const E2BIG = 7;

export interface LowerdirSupport {
  readonly syntax: LowerdirSyntax;
  /** Why, for the manager's log and the ownership reason. */
  readonly reason: string;
}

let probed: LowerdirSupport | undefined;

/**
 * Which syntax this kernel takes, probed once per process by creating (never attaching) a
 * read-only overlay of two empty directories with `lowerdir+`. Kernels before 6.5 accept any key
 * at fsconfig time and refuse it only at create, so the create is what answers.
 */
export function lowerdirSupport(scratchParent = '/run'): LowerdirSupport {
  if (process.env[FORCE_LEGACY_ENV] === 'legacy') {
    return { syntax: 'legacy', reason: `colon-joined lowerdir= forced by ${FORCE_LEGACY_ENV}=legacy` };
  }
  if (probed) return probed;
  const dir = mkdtempSync(path.join(scratchParent, 'sysrunc-lowerdir-probe-'));
  const layers = [path.join(dir, 'a'), path.join(dir, 'b')];
  try {
    for (const l of layers) mkdirSync(l);
    const fd = fsopen('overlay');
    try {
      for (const l of layers) fsconfig(fd, 'overlay', { key: 'lowerdir+', value: l });
      libc().close(fsmountCreate(fd, 'overlay', 'lowerdir+ probe'));
      probed = { syntax: 'lowerdir+', reason: 'the kernel takes one lowerdir+ per layer' };
    } catch (err) {
      probed = { syntax: 'legacy', reason: `the kernel refuses lowerdir+ (${describe(err)}): colon-joined lowerdir=` };
    } finally {
      libc().close(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

/**
 * Mounts an overlay of the layers at target (an existing directory). With the legacy syntax,
 * lower layers inside baseDir are passed relative to it (the process's working directory during the
 * call), which keeps the option string within one page.
 */
export function mountOverlay(target: string, layers: OverlayLayers, syntax: LowerdirSyntax, baseDir?: string): void {
  if (syntax === 'lowerdir+') return mountOverlayPerLayer(target, layers);
  return mountOverlayLegacy(target, layers, baseDir);
}

function mountOverlayPerLayer(target: string, layers: OverlayLayers): void {
  const params: FsParam[] = layers.lowerdirs.map((dir) => ({ key: 'lowerdir+', value: dir }));
  if (layers.upperdir !== undefined) params.push({ key: 'upperdir', value: layers.upperdir });
  if (layers.workdir !== undefined) params.push({ key: 'workdir', value: layers.workdir });
  for (const [key, value] of Object.entries(layers.options)) params.push(value === '' ? { key, flag: true } : { key, value });
  mountFs('overlay', params, target);
}

/** The option string mount(2) gets; exported for its unit test. */
export function legacyOverlayData(layers: OverlayLayers, baseDir?: string): string {
  const short = (p: string): string => {
    if (baseDir === undefined) return p;
    const rel = path.relative(baseDir, p);
    return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? p : rel;
  };
  const parts = [`lowerdir=${layers.lowerdirs.map((d) => escapeOption(short(d))).join(':')}`];
  // Upper and work stay absolute: mountinfo then names them exactly (how sysrunc knows its own overlay).
  if (layers.upperdir !== undefined) parts.push(`upperdir=${escapeOption(layers.upperdir)}`);
  if (layers.workdir !== undefined) parts.push(`workdir=${escapeOption(layers.workdir)}`);
  for (const [key, value] of Object.entries(layers.options)) parts.push(value === '' ? key : `${key}=${value}`);
  return parts.join(',');
}

function mountOverlayLegacy(target: string, layers: OverlayLayers, baseDir?: string): void {
  const data = legacyOverlayData(layers, baseDir);
  if (Buffer.byteLength(data) > MOUNT_DATA_MAX) {
    throw new SyscallError('mount', `overlay ${target}`, E2BIG, `${layers.lowerdirs.length} layers do not fit mount(2)'s one-page option string`);
  }
  const previous = process.cwd();
  // Relative layer paths resolve against the working directory at the mount(2) call; the call is
  // synchronous, so nothing else in this process runs while it is changed.
  if (baseDir !== undefined) process.chdir(baseDir);
  try {
    if (libc().mount('overlay', target, 'overlay', 0, data) === -1) throw sysFail('mount', `overlay ${target} (${data})`);
  } finally {
    if (baseDir !== undefined) process.chdir(previous);
  }
}

/** overlay's option parser takes a backslash before ',' ':' and '\' inside a path. */
function escapeOption(p: string): string {
  return p.replace(/[\\,:]/g, (c) => `\\${c}`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
