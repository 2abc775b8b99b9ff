// Which in-container paths get a store volume: the data directories of container engines that
// put overlayfs (or other copy-on-write layers) below them, which cannot live on the container's
// own overlayfs rootfs. Shared by the transforms (which paths an image uses) and the manager (the
// volumes themselves), so it lives with neither.
import path from 'node:path';
import { oneLine as describe } from './errors.ts';

export const DOCKER_DATA_ROOT = '/var/lib/docker';

export const STORE_PATHS: readonly string[] = [
  DOCKER_DATA_ROOT,
  '/var/lib/kubelet',
  '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs',
  '/var/lib/buildkit',
  // podman's, buildah's and CRI-O's (containers/storage, root's graphroot): a system container's
  // own podman.service fails on its overlayfs rootfs ("'overlay' is not supported over overlayfs").
  '/var/lib/containers/storage',
  '/var/lib/k0s',
  '/var/lib/rancher/k3s',
];

const DAEMON_JSON = '/etc/docker/daemon.json';
const MAX_DAEMON_JSON = 1024 * 1024;
const KERNEL_TREES = ['/proc', '/sys', '/dev'];

/** Reads a file inside a rootfs, symlinks resolved within it (host/in-root.ts's Rootfs); none: no such file. */
export interface RootfsFileReader {
  readFile(inRoot: string, maxBytes: number): Buffer | undefined;
}

export interface StorePathInfo {
  /** The container's rootfs with the image's (0-based) ownership, open for reading. */
  readonly rootfs: RootfsFileReader;
  /** Destinations of the mounts already in the spec (the user's -v, Docker's own). */
  readonly mountDestinations: readonly string[];
}

export interface StorePaths {
  /** In-container paths to give a store volume, parents before children. */
  readonly paths: string[];
  /** Store paths left alone because a mount in the spec already covers them. */
  readonly skipped: Array<{ path: string; coveredBy: string }>;
  /** The inner Docker data root used (from the image's /etc/docker/daemon.json, or the default). */
  readonly dockerDataRoot: string;
  /** Problems with the image's daemon.json that made it fall back to the default data root. */
  readonly warnings: string[];
}

/**
 * The store paths for a container. A mount at a store path or at one of its parents wins: that
 * path gets no volume. A mount below a store path does not: the volume is still made (and must be
 * mounted before it). Reads the image's daemon.json (resolved inside the rootfs).
 */
export function storePathsFor(info: StorePathInfo): StorePaths {
  const warnings: string[] = [];
  const dockerDataRoot = dataRootOf(info.rootfs, warnings);
  return { ...selectStorePaths(dockerDataRoot, info.mountDestinations), dockerDataRoot, warnings };
}

/** storePathsFor without the rootfs: the inner Docker data root is given. */
export function selectStorePaths(dockerDataRoot: string, mountDestinations: readonly string[]): Pick<StorePaths, 'paths' | 'skipped'> {
  const wanted = [...new Set([dockerDataRoot, ...STORE_PATHS.filter((p) => p !== DOCKER_DATA_ROOT)])].sort();
  const mounts = mountDestinations.map((d) => path.posix.resolve('/', d));
  const paths: string[] = [];
  const skipped: StorePaths['skipped'] = [];
  for (const p of wanted) {
    const cover = mounts.find((m) => isSameOrBelow(p, m));
    if (cover !== undefined) skipped.push({ path: p, coveredBy: cover });
    else if (!paths.some((q) => isSameOrBelow(p, q))) paths.push(p); // nested in another store volume: covered already
  }
  return { paths, skipped };
}

function dataRootOf(r: RootfsFileReader, warnings: string[]): string {
  let text: Buffer | undefined;
  try {
    text = r.readFile(DAEMON_JSON, MAX_DAEMON_JSON);
  } catch (err) {
    warnings.push(`${DAEMON_JSON}: ${describe(err)}; using ${DOCKER_DATA_ROOT}`);
    return DOCKER_DATA_ROOT;
  }
  if (text === undefined) return DOCKER_DATA_ROOT;
  let config: unknown;
  try {
    config = JSON.parse(text.toString('utf8'));
  } catch (err) {
    warnings.push(`${DAEMON_JSON}: invalid JSON (${describe(err)}); using ${DOCKER_DATA_ROOT}`);
    return DOCKER_DATA_ROOT;
  }
  if (typeof config !== 'object' || config === null) return DOCKER_DATA_ROOT;
  const record = config as Record<string, unknown>;
  const value = record['data-root'] ?? record['graph']; // "graph" is the pre-17.05 name
  if (value === undefined) return DOCKER_DATA_ROOT;
  if (typeof value !== 'string' || !path.posix.isAbsolute(value)) {
    warnings.push(`${DAEMON_JSON}: data-root ${JSON.stringify(value)} is not an absolute path; using ${DOCKER_DATA_ROOT}`);
    return DOCKER_DATA_ROOT;
  }
  const norm = path.posix.resolve(value);
  if (norm === '/' || KERNEL_TREES.some((t) => isSameOrBelow(norm, t))) {
    warnings.push(`${DAEMON_JSON}: data-root ${norm} cannot be a store volume; using ${DOCKER_DATA_ROOT}`);
    return DOCKER_DATA_ROOT;
  }
  return norm;
}

/** p equals dir or lies below it (both normalized, absolute). */
export function isSameOrBelow(p: string, dir: string): boolean {
  return p === dir || dir === '/' || p.startsWith(`${dir}/`);
}
