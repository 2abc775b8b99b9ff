// Where the rig keeps things, and which host binaries it drives (env overrides for CI tweaks).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Per-daemon runtime state (sockets, pidfiles, exec roots). Short on purpose: unix socket paths max 107 bytes. */
export const RIG_RUN_DIR = '/run/sysrunc-test';
/** Per-daemon persistent state (data roots, logs). Must be a real fs (ext4), not overlayfs/tmpfs. */
export const RIG_LIB_DIR = '/var/lib/sysrunc-test';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RIG_CLEAN_SCRIPT = path.join(REPO_ROOT, 'scripts/rig-clean.sh');

export function cacheDir(): string {
  return process.env['SYSRUNC_TEST_CACHE'] ?? '/var/cache/sysrunc-test';
}

export const bins = {
  runc: process.env['SYSRUNC_TEST_RUNC'] ?? '/usr/sbin/runc',
  dockerd: process.env['SYSRUNC_TEST_DOCKERD'] ?? '/usr/sbin/dockerd',
  containerd: process.env['SYSRUNC_TEST_CONTAINERD'] ?? '/usr/bin/containerd',
  ctr: process.env['SYSRUNC_TEST_CTR'] ?? '/usr/bin/ctr',
  busybox: process.env['SYSRUNC_TEST_BUSYBOX'] ?? '/bin/busybox',
} as const;

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,39}$/;

export interface RigDirs {
  name: string;
  /** /run/sysrunc-test/<name> */
  run: string;
  /** /var/lib/sysrunc-test/<name> */
  lib: string;
}

export function rigDirs(name: string): RigDirs {
  if (!NAME_RE.test(name)) {
    throw new Error(`rig name ${JSON.stringify(name)} must match ${NAME_RE} (it becomes part of socket paths)`);
  }
  return { name, run: path.join(RIG_RUN_DIR, name), lib: path.join(RIG_LIB_DIR, name) };
}

/** process.env plus `extra`, with the sbin dirs on PATH (dockerd resolves the stock "runc" there). */
export function daemonEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const dirs = (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':');
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return { ...process.env, PATH: dirs.join(':'), ...extra };
}
