// Overlay rootfs clones: a second overlay over the same lower layers (plus the
// original's upper dir, read only) with a fresh upper, mounted metacopy=on so
// that chowning the clone copies up metadata only, never file data. The image
// layers are shared with every other container and stay untouched.
//
// Caveats, by design:
// - Container writes go to the clone's upper; `docker diff/commit/cp` look at
//   the original upper and do not see them.
// - The original upper is used as a lower layer while the original overlay is
//   still mounted. Overlay only warns about that with index=off (the clone sets
//   it) and it is safe as long as nobody writes through the original mount,
//   which holds while the container runs on the clone.
// - metacopy/redirect_dir follow trusted.overlay.* xattrs found in lower
//   layers. Containers cannot set those through an overlay, and image layers
//   extracted by dockerd do not carry them, but a layer directory written by
//   an untrusted party outside an overlay would be trusted here.
import { lstatSync, mkdirSync, chmodSync, chownSync, readdirSync, rmdirSync, rmSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { lowerdirSupport, mountOverlay as mountOverlayWith } from '../../host/overlay-mount.ts';
import path from 'node:path';
import { SyscallError, fromNodeError, libc, sysFail } from '../../host/libc.ts';
import { isMountPoint, mountsUnder, unmount } from '../../host/mount.ts';
import { FSCONFIG_MAX_STRING, mountFs, type FsParam } from '../../host/fsmount.ts';
import { parseOverlayMount } from '../../host/overlay-mountinfo.ts';

export { parseOverlayMount, parseOverlayOptions, type OverlayMount } from '../../host/overlay-mountinfo.ts';


export interface OverlayClone {
  merged: string;
  upper: string;
  work: string;
}

export interface CreateOverlayCloneOptions {
  /** Container id; names the clone directory cloneRoot/<id>. */
  id: string;
  /** Mountpoint of the overlay to clone (the container's rootfs). */
  source: string;
  cloneRoot: string;
  /** Directory relative layer paths are relative to (dockerd's overlay2 dir, see parseOverlayMount). */
  baseDir?: string;
}

const EINVAL = 22;
const EBUSY = 16;
const EXDEV = 18;
const MS_PRIVATE = 1 << 18;



function cloneDir(id: string, cloneRoot: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new Error(`invalid clone id ${JSON.stringify(id)}`);
  return path.join(path.resolve(cloneRoot), id);
}

function mkdir(p: string, mode: number): void {
  try {
    mkdirSync(p, { mode });
  } catch (err) {
    throw fromNodeError(err, 'mkdir', p);
  }
}

function lstat(p: string): Stats {
  try {
    return lstatSync(p);
  } catch (err) {
    throw fromNodeError(err, 'lstat', p);
  }
}

function copyOwnerAndMode(p: string, st: Stats): void {
  try {
    chownSync(p, st.uid, st.gid);
  } catch (err) {
    throw fromNodeError(err, 'chown', p);
  }
  try {
    chmodSync(p, st.mode & 0o7777);
  } catch (err) {
    throw fromNodeError(err, 'chmod', p);
  }
}

function cloneParams(layers: { lower: string[]; data: string[] }, upper: string, work: string, id: string): FsParam[] {
  const params: FsParam[] = [{ key: 'source', value: `sysrunc-clone-${id}` }];
  for (const l of layers.lower) params.push({ key: 'lowerdir+', value: l });
  for (const d of layers.data) params.push({ key: 'datadir+', value: d });
  params.push(
    { key: 'upperdir', value: upper },
    { key: 'workdir', value: work },
    // metacopy requires redirect_dir=on (this kernel's module default is off).
    { key: 'redirect_dir', value: 'on' },
    { key: 'metacopy', value: 'on' },
    // index=on would refuse the original upper as a lower (it is in use as
    // the upper of the original mount); off only warns.
    { key: 'index', value: 'off' },
  );
  return params;
}

/**
 * Mounts the overlay through fsconfig, one parameter per layer ("lowerdir+",
 * Linux 6.8+). The classic mount(2) passes all options as one string copied
 * in a single page (4096 bytes): with dockerd's ~95-byte layer paths that
 * caps an image at about 40 layers, which is why dockerd falls back to short
 * relative links. fsconfig strings are capped at 255 bytes each instead.
 * Kernels without lowerdir+ get mount(2) with the legacy string, the layers
 * named through short links in the clone dir (l/0, l/1, ...) the same way.
 */
function mountOverlay(layers: { lower: string[]; data: string[] }, upper: string, work: string, id: string, target: string): void {
  const params = cloneParams(layers, upper, work, id);
  const tooLong = params.find((p) => 'value' in p && Buffer.byteLength(p.value) > FSCONFIG_MAX_STRING);
  if (tooLong) throw new SyscallError('fsconfig', `overlay ${tooLong.key}`, 7, `path longer than ${FSCONFIG_MAX_STRING} bytes`);
  if (lowerdirSupport().syntax === 'lowerdir+') {
    mountFs('overlay', params, target);
    return;
  }
  if (layers.data.length > 0) throw new SyscallError('mount', target, 22, 'data-only layers need a kernel with lowerdir+ and datadir+');
  const dir = path.dirname(target);
  const links = path.join(dir, 'l');
  rmSync(links, { recursive: true, force: true });
  mkdirSync(links, { mode: 0o700 });
  const lowerdirs = layers.lower.map((layer, i) => {
    const link = path.join(links, String(i));
    symlinkSync(layer, link);
    return link;
  });
  const options = { redirect_dir: 'on', metacopy: 'on', index: 'off' };
  mountOverlayWith(target, { lowerdirs, upperdir: upper, workdir: work, options }, 'legacy', dir);
}

/**
 * Mounts cloneRoot/<id>/merged: an overlay whose lower layers are the source
 * overlay's upper dir (topmost) and lower dirs, with a new upper and work dir
 * under cloneRoot/<id>/. Fails with EEXIST if the clone directory exists.
 */
export function createOverlayClone(opts: CreateOverlayCloneOptions): OverlayClone {
  const src = parseOverlayMount(opts.source, { baseDir: opts.baseDir });
  if (src.options.userxattr === true) {
    throw new SyscallError('mount', opts.source, EINVAL, 'source overlay uses userxattr, which excludes metacopy');
  }
  const lower = src.upperdir ? [src.upperdir, ...src.lowerdirs] : [...src.lowerdirs];
  return mountOverlayClone({ id: opts.id, cloneRoot: opts.cloneRoot, lowerdirs: lower, datadirs: src.datadirs, rootOwner: lstat(src.mountPoint), reuse: false });
}

export interface MountOverlayCloneOptions {
  id: string;
  cloneRoot: string;
  /** Topmost first. */
  lowerdirs: readonly string[];
  datadirs?: readonly string[];
  /** Owner and mode the merged root gets (a new upper dir's root shows through). */
  rootOwner: Stats;
  /** Mount an existing clone directory again (its upper kept from an earlier mount) instead of failing. */
  reuse: boolean;
}

/**
 * Mounts cloneRoot/<id>/merged over the given layers with the clone's own upper and work dirs,
 * creating them unless an earlier clone of the same container is reused.
 */
export function mountOverlayClone(opts: MountOverlayCloneOptions): OverlayClone {
  const dir = cloneDir(opts.id, opts.cloneRoot);
  try {
    mkdirSync(path.resolve(opts.cloneRoot), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fromNodeError(err, 'mkdir', opts.cloneRoot);
  }
  const clone: OverlayClone = { merged: path.join(dir, 'merged'), upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
  const existed = opts.reuse && isDirectory(dir);
  if (!existed) mkdir(dir, 0o700);
  try {
    if (!existed) {
      mkdir(clone.upper, 0o755);
      mkdir(clone.work, 0o700);
      mkdir(clone.merged, 0o755);
      // The merged root takes its owner and mode from the upper dir's root.
      copyOwnerAndMode(clone.upper, opts.rootOwner);
    } else if (isMountPoint(clone.merged)) {
      return clone;
    }
    mountOverlay({ lower: [...opts.lowerdirs], data: [...(opts.datadirs ?? [])] }, clone.upper, clone.work, opts.id, clone.merged);
    // Attached below a shared mount it would be shared too, and copied into
    // every mount namespace created later (keeping it busy after unmount).
    if (libc().mount(null, clone.merged, null, MS_PRIVATE, null) === -1) {
      const err = sysFail('mount', `${clone.merged} (make private)`);
      unmount(clone.merged, { detach: true });
      throw err;
    }
  } catch (err) {
    try {
      if (existed) unmountOverlayClone(opts.id, opts.cloneRoot);
      else removeOverlayClone(opts.id, opts.cloneRoot);
    } catch {
      // keep the original error; the leftover is reported by the next removal
    }
    throw err;
  }
  return clone;
}

/** Unmounts cloneRoot/<id>/merged, keeping the clone's upper dir for a later mount. */
export function unmountOverlayClone(id: string, cloneRoot: string): void {
  const merged = path.join(cloneDir(id, cloneRoot), 'merged');
  for (let i = 0; i < 64 && isMountPoint(merged); i++) unmount(merged, { detach: true });
}

function isDirectory(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fromNodeError(err, 'lstat', p);
  }
}

/**
 * Unmounts cloneRoot/<id>/merged and deletes the clone directory. Deletion
 * starts only once nothing is mounted anywhere below it, and never leaves the
 * directory's filesystem (st_dev checked per entry). A missing clone is fine.
 */
export function removeOverlayClone(id: string, cloneRoot: string): void {
  const dir = cloneDir(id, cloneRoot);
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return;
    throw fromNodeError(err, 'lstat', dir);
  }
  if (!st.isDirectory()) throw new SyscallError('rmdir', dir, 20, 'clone path is not a directory');
  const merged = path.join(dir, 'merged');
  for (let i = 0; i < 64 && isMountPoint(merged); i++) unmount(merged);
  const busy = mountsUnder(dir);
  if (busy.length > 0) throw new SyscallError('rmdir', dir, EBUSY, `still mounted below it: ${busy.join(', ')}`);
  removeTree(Buffer.from(dir), st.dev);
}

// Buffer paths: an upper dir may hold names that are not valid UTF-8.
function removeTree(p: Buffer, dev: number): void {
  const shown = p.toString('utf8');
  let st: Stats;
  try {
    st = lstatSync(p);
  } catch (err) {
    throw fromNodeError(err, 'lstat', shown);
  }
  if (st.dev !== dev) throw new SyscallError('unlink', shown, EXDEV, 'on another filesystem than the clone directory; not removing');
  if (!st.isDirectory()) {
    try {
      unlinkSync(p);
    } catch (err) {
      throw fromNodeError(err, 'unlink', shown);
    }
    return;
  }
  if (isMountPoint(shown)) throw new SyscallError('rmdir', shown, EBUSY, 'is a mountpoint');
  let names: Buffer[];
  try {
    names = readdirSync(p, { encoding: 'buffer' });
  } catch (err) {
    throw fromNodeError(err, 'readdir', shown);
  }
  for (const name of names) removeTree(Buffer.concat([p, Buffer.from('/'), name]), dev);
  try {
    rmdirSync(p);
  } catch (err) {
    throw fromNodeError(err, 'rmdir', shown);
  }
}
