// Reading an overlay mount's layers from /proc/self/mountinfo: the rootfs of Docker (overlay2) and
// containerd (overlayfs snapshotter) is such a mount, and overlay mounts themselves cannot be
// idmapped, only their layers.
import path from 'node:path';
import { SyscallError } from './libc.ts';
import { readMountInfo, type MountInfo } from './mount.ts';
import { topMountAt } from './statmount.ts';

const EINVAL = 22;
const ENOENT = 2;

export interface OverlayMount {
  mountPoint: string;
  /** Merged lower layers, topmost first. */
  lowerdirs: string[];
  /** Data-only lower layers ("::" in lowerdir, or datadir+). */
  datadirs: string[];
  upperdir?: string;
  workdir?: string;
  /** Every other option; flags without a value map to true. */
  options: Record<string, string | true>;
}

/** Parses the super options of an overlay mountinfo line. */
export function parseOverlayOptions(superOptions: string, baseDir?: string): Omit<OverlayMount, 'mountPoint'> {
  const result: Omit<OverlayMount, 'mountPoint'> = { lowerdirs: [], datadirs: [], options: {} };
  const resolve = (p: string): string => {
    if (path.isAbsolute(p)) return p;
    if (baseDir === undefined) throw new Error(`overlay layer path "${p}" is relative; pass the directory it was mounted from`);
    return path.resolve(baseDir, p);
  };
  // Commas inside values are escaped (\054), so a plain split is exact.
  for (const raw of superOptions.split(',')) {
    if (raw === '') continue;
    const eq = raw.indexOf('=');
    const key = unescapeOctal(eq < 0 ? raw : raw.slice(0, eq));
    if (eq < 0) {
      result.options[key] = true;
      continue;
    }
    const value = unescapeOctal(raw.slice(eq + 1));
    switch (key) {
      case 'lowerdir': {
        const { lower, data } = splitLowerdir(value);
        result.lowerdirs.push(...lower.map(resolve));
        result.datadirs.push(...data.map(resolve));
        break;
      }
      case 'lowerdir+':
        result.lowerdirs.push(resolve(value));
        break;
      case 'datadir+':
        result.datadirs.push(resolve(value));
        break;
      case 'upperdir':
        result.upperdir = resolve(value);
        break;
      case 'workdir':
        result.workdir = resolve(value);
        break;
      default:
        result.options[key] = value;
    }
  }
  return result;
}

/**
 * Layers of the overlay mounted at mountpoint, from /proc/self/mountinfo (or a reading of it the
 * caller already has: with a hundred containers running it is ~500 lines to read and parse).
 * dockerd mounts long layer lists with paths relative to its overlay2 dir
 * (to fit mount(2)'s one-page limit); pass that dir as baseDir to resolve them.
 */
export function parseOverlayMount(mountpoint: string, opts: { baseDir?: string; mountInfo?: readonly MountInfo[] } = {}): OverlayMount {
  const target = path.resolve(mountpoint);
  const mounts = (opts.mountInfo ?? readMountInfo()).filter((m) => m.mountPoint === target);
  const top = mounts[mounts.length - 1];
  if (!top) throw new SyscallError('mountinfo', target, EINVAL, 'not a mountpoint');
  if (top.fsType !== 'overlay') throw new SyscallError('mountinfo', target, EINVAL, `not an overlay mount (fs type ${top.fsType})`);
  return { mountPoint: target, ...parseOverlayOptions(top.superOptions, opts.baseDir) };
}

/**
 * parseOverlayMount's answer for the top mount at mountpoint, asked of that one mount (statx and
 * statmount, host/statmount.ts) where the kernel can tell, else read from mountinfo. The options
 * then lack the superblock's rw/ro flag, which mountinfo puts first.
 */
export function topOverlayAt(mountpoint: string, o: { baseDir?: string; mountInfo?: () => readonly MountInfo[] } = {}): OverlayMount {
  const target = path.resolve(mountpoint);
  const baseDir = o.baseDir === undefined ? {} : { baseDir: o.baseDir };
  // mountinfo (the caller's reading of it, if it has one) only where the mount cannot tell.
  const fromMountInfo = () => parseOverlayMount(target, { ...baseDir, ...(o.mountInfo === undefined ? {} : { mountInfo: o.mountInfo() }) });
  let top;
  try {
    top = topMountAt(target);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT && err.syscall === 'statx') throw new SyscallError('mountinfo', target, EINVAL, 'not a mountpoint');
    // The mount went between statx and statmount: mountinfo tells what is there now.
    if (err instanceof SyscallError && err.errno === ENOENT) return fromMountInfo();
    throw err;
  }
  if (top.kind === 'unknown') return fromMountInfo();
  if (top.kind === 'not-a-mount') throw new SyscallError('mountinfo', target, EINVAL, 'not a mountpoint');
  if (top.fsType !== 'overlay') throw new SyscallError('mountinfo', target, EINVAL, `not an overlay mount (fs type ${top.fsType})`);
  return { mountPoint: target, ...parseOverlayOptions(top.superOptions, o.baseDir) };
}

/** Splits a legacy lowerdir value on unescaped ':' ('\' escapes the next char); layers after "::" are data-only. */
function splitLowerdir(value: string): { lower: string[]; data: string[] } {
  const tokens: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] ?? '';
    if (c === '\\' && i + 1 < value.length) cur += value[++i];
    else if (c === ':') {
      tokens.push(cur);
      cur = '';
    } else cur += c;
  }
  tokens.push(cur);
  const out = { lower: [] as string[], data: [] as string[] };
  let inData = false;
  for (const t of tokens) {
    if (t === '') inData = true; // the empty element between "::"
    else (inData ? out.data : out.lower).push(t);
  }
  return out;
}

/** Decodes the octal escapes seq_file puts in mountinfo options (\054 ',', \075 '=', \040 ' ', \134 '\'). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
