// Where sysrunc cannot work, install refuses with one line saying why: no user namespaces, no
// idmapped mounts and no clone fallback, runc missing or older than 1.1, no room for subordinate
// ids. Paths are looked up under --root (a node's root mounted elsewhere); user namespaces,
// idmapped mounts and overlayfs are the running kernel's.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probeIdmapSupport, type IdmapSupport } from '../../host/idmap-probe.ts';
import { EngineConfigError } from './docker-config.ts';

/** Where the kernel's facts are read (tests simulate a kernel this host is not through them). */
export interface HostProbeInputs {
  /** Default /proc/sys (user/max_user_namespaces). */
  readonly procSys?: string;
  /** Default /proc/filesystems. */
  readonly procFilesystems?: string;
  /** Default /sys/module (overlay/parameters/metacopy once overlayfs is loaded). */
  readonly sysModule?: string;
  /** Default the running kernel's. */
  readonly kernelRelease?: string;
  /** Whether a path's filesystem can be idmapped; default: tried (src/host/idmap-probe.ts). */
  readonly idmap?: (path: string) => IdmapSupport;
}

const RUNC_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];
const MIN_RUNC: readonly [number, number] = [1, 1];
// The manager's subordinate ids: 2^16 per container above the first 2^16 (subid-alloc.ts).
const NEEDED_IDS = 65536 * 16;

export function findRunc(root: string): string | undefined {
  return RUNC_DIRS.map((d) => path.join(root, d, 'runc')).find((p) => existsSync(p));
}

function checkUserNamespaces(procSys: string): void {
  const file = path.join(procSys, 'user/max_user_namespaces');
  const max = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
  if (!(max > 0)) throw new EngineConfigError(`user namespaces are not available (${file}: ${existsSync(file) ? max : 'missing'}): sysrunc cannot work on this kernel`);
}

function checkRunc(root: string): void {
  const runc = findRunc(root);
  if (runc === undefined) throw new EngineConfigError(`runc not found in ${RUNC_DIRS.map((d) => path.join(root, d)).join(', ')}: install runc ${MIN_RUNC.join('.')} or newer`);
  let out: string;
  try {
    out = execFileSync(runc, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new EngineConfigError(`${runc} --version failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): sysrunc needs a working runc`);
  }
  const m = /runc version (\d+)\.(\d+)/.exec(out);
  if (m === null) throw new EngineConfigError(`${runc} --version did not name a version: sysrunc needs runc ${MIN_RUNC.join('.')} or newer`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < MIN_RUNC[0] || (major === MIN_RUNC[0] && minor < MIN_RUNC[1])) throw new EngineConfigError(`${runc} is version ${major}.${minor}: sysrunc needs runc ${MIN_RUNC.join('.')} or newer`);
}

function checkSubordinateIds(root: string): void {
  // Every range of every user, merged; sysrunc needs a free stretch of the 32-bit id space.
  const taken: Array<[number, number]> = [];
  for (const f of ['etc/subuid', 'etc/subgid']) {
    const file = path.join(root, f);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [, start, count] = line.split(':');
      if (start !== undefined && count !== undefined && /^\d+$/.test(start) && /^\d+$/.test(count)) taken.push([Number(start), Number(start) + Number(count)]);
    }
    taken.sort((a, b) => a[0] - b[0]);
    let cursor = 65536;
    let largest = 0;
    for (const [s, e] of taken) {
      largest = Math.max(largest, s - cursor);
      cursor = Math.max(cursor, e);
    }
    largest = Math.max(largest, 2 ** 32 - 1 - cursor);
    if (largest < NEEDED_IDS) throw new EngineConfigError(`${file} leaves no free range of ${NEEDED_IDS} subordinate ids: sysrunc has none to give its containers`);
    taken.length = 0;
  }
}

// The directories whose filesystem holds the engines' image layers: the first that exists is probed.
const LAYER_DIRS = ['/var/lib/containerd', '/var/lib/docker', '/var/lib'];
// overlayfs's metacopy (the clone's copy-up of metadata only) came with Linux 4.19.
const METACOPY_SINCE: readonly [number, number] = [4, 19];

/** Why the clone fallback (an overlay clone with metacopy=on, then a chown) cannot work; undefined: it can. */
function cloneUnavailable(root: string, p: HostProbeInputs): string | undefined {
  const release = p.kernelRelease ?? os.release();
  const filesystems = p.procFilesystems ?? '/proc/filesystems';
  const known = existsSync(filesystems) && /\toverlay$/m.test(readFileSync(filesystems, 'utf8'));
  const moduleDir = path.join(root, 'lib/modules', release, 'kernel/fs/overlayfs');
  if (!known && !existsSync(moduleDir)) return `no overlayfs in ${filesystems} or ${moduleDir}`;
  const loaded = existsSync(path.join(p.sysModule ?? '/sys/module', 'overlay'));
  if (loaded) {
    const param = path.join(p.sysModule ?? '/sys/module', 'overlay/parameters/metacopy');
    return existsSync(param) ? undefined : `overlayfs has no metacopy (${param} missing)`;
  }
  const [major = 0, minor = 0] = release.split('.').map((n) => Number.parseInt(n, 10));
  const old = major < METACOPY_SINCE[0] || (major === METACOPY_SINCE[0] && minor < METACOPY_SINCE[1]);
  return old ? `overlayfs on kernel ${release} has no metacopy (${METACOPY_SINCE.join('.')} or newer)` : undefined;
}

/**
 * Refuses only where the kernel or filesystem says no: a probe that could not run (no privilege,
 * as in an unprivileged container) is no answer, and the manager probes again per container.
 */
function checkOwnership(root: string, p: HostProbeInputs): void {
  const dir = LAYER_DIRS.map((d) => path.join(root, d)).find((d) => existsSync(d)) ?? root;
  const idmap = (p.idmap ?? probeIdmapSupport)(dir);
  if (idmap.supported || !/not supported|ENOSYS/.test(idmap.reason)) return;
  const clone = cloneUnavailable(root, p);
  if (clone === undefined) return;
  throw new EngineConfigError(`no idmapped mounts (${idmap.reason}) and no clone fallback (${clone}): sysrunc cannot give containers their image's file ownership here`);
}

export function checkHost(root: string, probes: HostProbeInputs = {}): void {
  checkUserNamespaces(probes.procSys ?? '/proc/sys');
  checkOwnership(root, probes);
  checkRunc(root);
  checkSubordinateIds(root);
}
