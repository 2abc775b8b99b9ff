// Where sysrunc's lxcfs lives under the manager's run dir, and which of its files containers see.
import path from 'node:path';

/** The files lxcfs virtualizes that every system container gets, as paths inside the container. */
export const LXCFS_CONTAINER_FILES: readonly string[] = [
  '/proc/meminfo',
  '/proc/cpuinfo',
  '/proc/stat',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/diskstats',
  '/proc/swaps',
  '/sys/devices/system/cpu/online',
];

/** Its directory's name under the run dir. */
export const LXCFS_DIR_NAME = 'lxcfs';

export interface LxcfsLayout {
  /** <run-dir>/lxcfs */
  readonly dir: string;
  /** lxcfs's own FUSE mount. */
  readonly fuse: string;
  /**
   * One empty file per container file (same relative path), each carrying shared read-only binds
   * of lxcfs's file: what containers bind. A restarted lxcfs's binds are stacked on top, and the
   * stack propagates into the containers' copies.
   */
  readonly view: string;
  readonly pidFile: string;
  readonly logFile: string;
}

export function lxcfsLayout(runDir: string): LxcfsLayout {
  const dir = path.join(runDir, LXCFS_DIR_NAME);
  return { dir, fuse: path.join(dir, 'fuse'), view: path.join(dir, 'view'), pidFile: path.join(dir, 'lxcfs.pid'), logFile: path.join(dir, 'lxcfs.log') };
}

/** The view file a container binds at `containerPath`, and lxcfs's file that is bound onto it. */
export function lxcfsFilePair(layout: LxcfsLayout, containerPath: string): { readonly view: string; readonly lxcfs: string } {
  return { view: path.join(layout.view, containerPath), lxcfs: path.join(layout.fuse, containerPath) };
}
