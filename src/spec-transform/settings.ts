// sysrunc's per-container settings: their names, values and parsers. Who may choose each one (OCI
// annotations, the operator's runtime flags, the manager's defaults; the container's own environment
// only for harmless ones) is setting-sources.ts. An unknown or malformed setting from a trusted
// source is an error: a typo must not silently give a container different isolation.
import { SysruncError } from '../common/errors.ts';

export const ANNOTATION_PREFIX = 'io.sysrunc.';
export const ENV_PREFIX = 'SYSRUNC_';

export type OwnershipSetting = 'auto' | 'idmap' | 'shiftfs' | 'clone' | 'chown';

export interface ContainerSettings {
  /** Ids in the container's user namespace; undefined: the manager's default. */
  readonly usernsSize: number | undefined;
  /** System-container rewrites (private namespaces, full caps in the userns, cgroup delegation...). */
  readonly systemContainer: boolean;
  /** 'all': container root gets every capability the host allows; 'caller': keep the config's. */
  readonly capabilities: 'all' | 'caller';
  /** systemd as init: 'auto' detects it from the process args and the image. */
  readonly systemd: 'auto' | 'true' | 'false';
  /** Host volumes for /var/lib/docker and the other store paths. */
  readonly storeVolumes: boolean;
  /** How the rootfs is made root-owned inside; 'auto' picks idmap > shiftfs > clone/chown. */
  readonly ownership: OwnershipSetting;
  /**
   * Host bind mounts (`-v`): 'container' mounts them as they are, so what the container writes
   * there is owned by its own range on the host; 'host-root' maps host root to container root there
   * (files the host's root owns look root-owned inside, and what container root writes is host root's).
   */
  readonly bindOwnership: 'container' | 'host-root';
  /** The container's /proc figures from sysrunc's lxcfs (meminfo, cpuinfo, stat, uptime...). */
  readonly lxcfs: boolean;
  /** Containers an inner runtime starts see lxcfs's figures too (a mount listener, lxcfs-nested.ts). */
  readonly lxcfsNested: boolean;
  /** Where each non-default setting came from, e.g. "annotation io.sysrunc.userns.size", for errors. */
  readonly origins: Readonly<Record<string, string>>;
}

export const DEFAULT_SETTINGS: ContainerSettings = {
  usernsSize: undefined,
  systemContainer: true,
  capabilities: 'all',
  systemd: 'auto',
  storeVolumes: true,
  ownership: 'auto',
  bindOwnership: 'container',
  lxcfs: true,
  lxcfsNested: true,
  origins: {},
};

type Parser = (value: string, where: string) => Partial<ContainerSettings>;

const SETTINGS: Record<string, Parser> = {
  'userns.size': (v, w) => ({ usernsSize: wholeNumber(v, w) }),
  syscont: (v, w) => ({ systemContainer: boolean(v, w) }),
  capabilities: (v, w) => ({ capabilities: oneOf(v, w, ['all', 'caller'] as const) }),
  systemd: (v, w) => ({ systemd: oneOf(v, w, ['auto', 'true', 'false'] as const) }),
  'store-volumes': (v, w) => ({ storeVolumes: boolean(v, w) }),
  ownership: (v, w) => ({ ownership: oneOf(v, w, ['auto', 'idmap', 'shiftfs', 'clone', 'chown'] as const) }),
  'bind-ownership': (v, w) => ({ bindOwnership: oneOf(v, w, ['container', 'host-root'] as const) }),
  lxcfs: (v, w) => ({ lxcfs: boolean(v, w) }),
  'lxcfs-nested': (v, w) => ({ lxcfsNested: boolean(v, w) }),
};

/** The settings' names, as in `io.sysrunc.<name>` (sysrunc features lists them). */
export const SETTING_NAMES: readonly string[] = Object.keys(SETTINGS);

/** `userns.size` <-> `SYSRUNC_USERNS_SIZE`. */
export function envName(setting: string): string {
  return ENV_PREFIX + setting.toUpperCase().replace(/[.-]/g, '_');
}

/** Parses one setting's value; a SysruncError naming `where` when the name or value is wrong. */
export function parseSetting(name: string, value: string, where: string): Partial<ContainerSettings> {
  const parse = SETTINGS[name];
  if (parse === undefined) throw unknown(where, SETTING_NAMES);
  return parse(value, where);
}

export function unknown(what: string, known: readonly string[]): SysruncError {
  return new SysruncError(`${what}: unknown sysrunc setting (known: ${known.join(', ')})`);
}

function wholeNumber(value: string, where: string): number {
  if (!/^\d{1,10}$/.test(value)) throw new SysruncError(`${where}: "${value}" is not a whole number`);
  return Number(value);
}

function boolean(value: string, where: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new SysruncError(`${where}: "${value}" is not true or false`);
}

function oneOf<T extends string>(value: string, where: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new SysruncError(`${where}: "${value}" is not one of ${allowed.join(', ')}`);
}
