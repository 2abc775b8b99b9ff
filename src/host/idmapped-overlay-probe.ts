// Can this kernel mount an overlay over idmapped views of these layers, with these options, the
// way create will? Answered by doing it once in a scratch dir: an idmapped view of the topmost
// layer as the only lower, an empty upper and work dir on the scratch filesystem, the engine's
// overlay options and the lowerdir syntax the kernel takes. Nothing is ever written to the layer.
import { mkdirSync, mkdtempSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { fromNodeError, libc } from './libc.ts';
import { isMountPoint, moveMountTo, openTreeClone, setIdmap, unmount } from './mount.ts';
import { createUserNamespaceFd } from './userns.ts';
import { lowerdirSupport, mountOverlay } from './overlay-mount.ts';
import type { IdmapSupport } from './idmap-probe.ts';

// Per st_dev of the layer, lowerdir syntax and options.
const cache = new Map<string, IdmapSupport>();
const PROBE_RANGE = { containerID: 0, hostID: 100000, size: 65536 };

/** Cached for the life of the process; scratchParent is a directory the probe may create in. */
export function probeIdmappedOverlay(lowerdir: string, options: Readonly<Record<string, string>>, scratchParent: string): IdmapSupport {
  let dev: number;
  try {
    dev = statSync(lowerdir).dev;
  } catch (err) {
    return { supported: false, reason: `cannot probe an overlay over idmapped layers at ${lowerdir}: ${fromNodeError(err, 'stat', lowerdir).message}` };
  }
  const syntax = lowerdirSupport(scratchParent).syntax;
  const key = `${dev}|${syntax}|${JSON.stringify(Object.entries(options).sort())}`;
  let result = cache.get(key);
  if (!result) {
    result = probe(lowerdir, options, scratchParent);
    cache.set(key, result);
  }
  return result;
}

function probe(lowerdir: string, options: Readonly<Record<string, string>>, scratchParent: string): IdmapSupport {
  mkdirSync(scratchParent, { recursive: true, mode: 0o711 });
  const dir = mkdtempSync(path.join(scratchParent, 'sysrunc-overlay-probe-'));
  const [lower, upper, work, merged] = ['l', 'u', 'w', 'm'].map((n) => path.join(dir, n)) as [string, string, string, string];
  for (const d of [lower, upper, work, merged]) mkdirSync(d, { mode: 0o700 });
  const c = libc();
  let usernsFd = -1;
  try {
    usernsFd = createUserNamespaceFd([PROBE_RANGE], [PROBE_RANGE]);
    const treeFd = openTreeClone(lowerdir);
    try {
      setIdmap(treeFd, usernsFd, { label: lowerdir });
      moveMountTo(treeFd, lower);
    } finally {
      c.close(treeFd);
    }
    const syntax = lowerdirSupport(scratchParent).syntax;
    mountOverlay(merged, { lowerdirs: [lower], upperdir: upper, workdir: work, options: { ...options, index: 'off' } }, syntax, dir);
    return { supported: true };
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replaceAll(dir, '<probe>');
    const opts = Object.entries(options).map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join(',');
    return { supported: false, reason: `this kernel cannot mount an overlay over idmapped layers of ${lowerdir}${opts === '' ? '' : ` with ${opts}`}: ${why}` };
  } finally {
    if (usernsFd >= 0) c.close(usernsFd);
    cleanUp(dir, [merged, lower], [work, upper]);
  }
}

/** Unmounts, then removes the scratch dirs one by one: never a recursive removal through a mount. */
function cleanUp(dir: string, mounts: readonly string[], dirs: readonly string[]): void {
  for (const m of mounts) {
    if (isMountPoint(m)) unmount(m, { detach: true });
  }
  // What overlay leaves in its work dir (a volatile mount leaves a dirty marker behind).
  const work = dirs[0] ?? dir;
  try {
    unlinkSync(path.join(work, 'work/incompat/volatile/dirty'));
  } catch {
    // not a volatile mount
  }
  for (const sub of ['work/incompat/volatile', 'work/incompat', 'work', 'index']) {
    try {
      rmdirSync(path.join(work, sub));
    } catch {
      // absent
    }
  }
  for (const d of [...mounts, ...dirs, dir]) rmdirSync(d);
}
