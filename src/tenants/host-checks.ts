// Run's checks of the host side of a Container, before anything is created: the rootfs, the named
// netns and each mount. Each failure names the thing and gets its own error code.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TenantError, type Container, type MountInfo } from '../tenants-api/v1.ts';

const BIND_TYPES = new Set(['bind', 'rbind']);

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

let filesystems: Set<string> | undefined;
function kernelFilesystems(): Set<string> {
  filesystems ??= new Set(readFileSync('/proc/filesystems', 'utf8').split('\n').map((l) => l.split('\t').pop()?.trim() ?? '').filter((x) => x !== ''));
  return filesystems;
}

/** Why the mount is not acceptable, or undefined. */
export function mountProblem(m: MountInfo, fsTypes: ReadonlySet<string>, sourceExists: (p: string) => boolean): string | undefined {
  if (m.target === '/') return 'target / would hide the rootfs';
  if (path.posix.normalize(m.target) !== m.target || m.target.endsWith('/')) return `target ${m.target} is not a clean absolute path`;
  if ((m.options ?? []).some((o) => o === '' || o.includes(','))) return `options of ${m.target} must be single, non-empty options`;
  if (BIND_TYPES.has(m.type)) {
    if (!m.source.startsWith('/')) return `bind source ${m.source} is not an absolute path`;
    if (!sourceExists(m.source)) return `bind source ${m.source} does not exist`;
    if (m.type === 'rbind') return `type rbind: use type bind with option rbind`;
    return undefined;
  }
  if (!fsTypes.has(m.type)) return `type ${m.type} of ${m.target} is not a filesystem this kernel knows`;
  return undefined;
}

export function checkHost(c: Container, netnsDir: string): { netnsPath: string | undefined } {
  if ((c.rootfs === undefined) === (c.image === undefined)) throw new TenantError('invalid-request', `container ${c.name}: give exactly one of rootfs and image`);
  if (c.rootfs !== undefined && !isDir(c.rootfs)) throw new TenantError('missing-rootfs', `container ${c.name}: rootfs ${c.rootfs} is not a directory`);
  for (const m of c.mounts ?? []) {
    const problem = mountProblem(m, kernelFilesystems(), exists);
    if (problem !== undefined) throw new TenantError('invalid-mount', `container ${c.name}: mount ${m.source} -> ${m.target}: ${problem}`);
  }
  if (c.network === undefined) return { netnsPath: undefined };
  const netnsPath = path.join(netnsDir, c.network.namespace);
  if (!exists(netnsPath)) throw new TenantError('missing-netns', `container ${c.name}: network namespace ${c.network.namespace} does not exist (${netnsPath})`);
  return { netnsPath };
}
