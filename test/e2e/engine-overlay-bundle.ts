// A bundle whose rootfs is an overlay mount of its own, as an engine's (dockerd's overlay2,
// containerd's snapshotter) is: the manager replaces it with its own while the container runs,
// and the container's delete is the synchronous one. The tests play the engine: they unmount it
// and remove the layer after the delete.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { readMountInfo } from '../../src/host/mount.ts';

/** The bundle's rootfs, made the lower layer of an overlay mounted at the same path. */
export function mountEngineOverlay(bundle: string): { rootfs: string; upperdir: string } {
  const rootfs = path.join(bundle, 'rootfs');
  const [lower, upperdir, work] = ['lower', 'upper', 'work'].map((d) => path.join(bundle, 'layer', d)) as [string, string, string];
  mkdirSync(path.dirname(lower), { recursive: true });
  renameSync(rootfs, lower);
  for (const dir of [upperdir, work, rootfs]) mkdirSync(dir);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upperdir},workdir=${work}`, rootfs]);
  return { rootfs, upperdir };
}

/** The upper dir of the overlay on top at mountpoint (undefined: no overlay there). */
export function topOverlayUpperdir(mountpoint: string): string | undefined {
  const top = readMountInfo().filter((m) => m.mountPoint === mountpoint).at(-1);
  if (top?.fsType !== 'overlay') return undefined;
  return top.superOptions.split(',').find((o) => o.startsWith('upperdir='))?.slice('upperdir='.length);
}

/** What the engine does once the delete returned: its overlay unmounted, the layer removed. */
export function removeEngineLayer(bundle: string): void {
  const rootfs = path.join(bundle, 'rootfs');
  while (readMountInfo().some((m) => m.mountPoint === rootfs)) execFileSync('umount', [rootfs]);
  rmSync(bundle, { recursive: true, force: true });
}
