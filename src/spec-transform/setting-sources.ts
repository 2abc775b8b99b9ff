// Who may choose each sysrunc setting. Docker and containerd build a container's environment from
// the image's ENV plus `-e`, so the environment is the image author's: a setting that widens what a
// container may do or take is never read from it. The trusted sources, highest precedence first:
//   1. OCI annotations `io.sysrunc.<name>` (docker --annotation, CRI annotations the operator let
//      through for the handler, runc bundles written by the caller);
//   2. runtime flags `--sysrunc-<name>=<value>` the operator put in the runtime's registration
//      (daemon.json runtimeArgs, podman --runtime-flag), handed over by the per-call binary;
//   3. the manager's own defaults (--subid-size, --ownership), applied where the setting is unset.
// The container's environment may choose only the harmless settings (HARMLESS_IN_ENV), below the
// runtime flags; anything else there is ignored with a warning, never an error, so an existing
// image that sets such a variable still runs, with the safe default.
import { SysruncError } from '../common/errors.ts';
import type { Spec } from '../oci/spec.ts';
import { ANNOTATION_PREFIX, DEFAULT_SETTINGS, ENV_PREFIX, envName, parseSetting, SETTING_NAMES, unknown, type ContainerSettings } from './settings.ts';

/**
 * Settings a container's own environment may choose: each changes only what happens inside the
 * container's own namespaces and gives it nothing more of the host. `systemd`: a tmpfs on /run and
 * /run/lock and `container=sysrunc` inside. `store-volumes`: on by default; `false` only gives less.
 * `lxcfs`: on by default; `false` only shows the container the kernel's own /proc files.
 * `lxcfs-nested`: on by default; `false` only shows inner containers the kernel's files.
 */
export const HARMLESS_IN_ENV: ReadonlySet<string> = new Set(['systemd', 'store-volumes', 'lxcfs', 'lxcfs-nested']);

/**
 * Podman writes this annotation into every config; podman before 4.6 also copies an image's own
 * annotations into it, so there an annotation may be the image author's (podman's fix:
 * containers/podman#18542). Its presence, not its value, counts: podman keeps an image's own value.
 * CRI-O writes it too, and is treated alike (its users give settings as runtime flags).
 */
export const PODMAN_ANNOTATION = 'io.container.manager';

export const FLAG_PREFIX = 'sysrunc-';

/** `userns.size` <-> `--sysrunc-userns-size`. */
export function flagName(setting: string): string {
  return FLAG_PREFIX + setting.replace(/\./g, '-');
}

const BY_FLAG: ReadonlyMap<string, string> = new Map(SETTING_NAMES.map((name) => [flagName(name), name]));
const BY_ENV: ReadonlyMap<string, string> = new Map(SETTING_NAMES.map((name) => [envName(name), name]));

/**
 * `--sysrunc-<name>=<value>` global flags (names without dashes, as the per-call binary collected
 * them) -> setting name -> value. A flag for no setting, or a value the setting does not take, is
 * an error naming the flag.
 */
export function parseRuntimeFlags(flags: Readonly<Record<string, string>>): Record<string, string> {
  const byName: Record<string, string> = {};
  for (const [flag, value] of Object.entries(flags)) {
    const name = BY_FLAG.get(flag);
    const where = `runtime flag --${flag}`;
    if (name === undefined) throw unknown(where, [...BY_FLAG.keys()].map((f) => `--${f}`));
    parseSetting(name, value, where);
    byName[name] = value;
  }
  return byName;
}

export interface ResolvedSettings {
  readonly settings: ContainerSettings;
  /** What was ignored and why, one line each, for the manager's log. */
  readonly ignored: readonly string[];
}

/** The container's settings from its config and the runtime flags of the call (see the top of this file). */
export function resolveSettings(spec: Spec, runtimeFlags: Readonly<Record<string, string>>): ResolvedSettings {
  const ignored: string[] = [];
  const chosen = new Map<string, { value: string; where: string }>();

  // Lowest first: each later source overrides.
  for (const entry of spec.process?.env ?? []) {
    if (!entry.startsWith(ENV_PREFIX)) continue;
    const eq = entry.indexOf('=');
    const key = eq === -1 ? entry : entry.slice(0, eq);
    const value = eq === -1 ? '' : entry.slice(eq + 1);
    const where = `environment variable ${key}`;
    const name = BY_ENV.get(key);
    if (name === undefined) {
      // SYSRUNC_* also names the host's own knobs (SYSRUNC_MGR_SOCKET...), e.g. in an image that runs sysrunc inside.
      ignored.push(`${where}: not a sysrunc setting; ignored`);
    } else if (!HARMLESS_IN_ENV.has(name)) {
      ignored.push(`${where}: ${name} is not taken from the container's environment (the image may set it); ignored. Use the annotation ${ANNOTATION_PREFIX}${name} or the runtime flag --${flagName(name)}`);
    } else {
      try {
        parseSetting(name, value, where);
        chosen.set(name, { value, where });
      } catch (err) {
        if (!(err instanceof SysruncError)) throw err;
        ignored.push(`${err.message}; ignored`);
      }
    }
  }

  for (const [flag, value] of Object.entries(runtimeFlags)) {
    const name = BY_FLAG.get(flag);
    const where = `runtime flag --${flag}`;
    if (name === undefined) throw unknown(where, [...BY_FLAG.keys()].map((f) => `--${f}`));
    chosen.set(name, { value, where });
  }

  const podman = spec.annotations?.[PODMAN_ANNOTATION] !== undefined;
  for (const [key, value] of Object.entries(spec.annotations ?? {})) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    const name = key.slice(ANNOTATION_PREFIX.length);
    const where = `annotation ${key}`;
    if (!SETTING_NAMES.includes(name)) throw unknown(where, SETTING_NAMES.map((n) => ANNOTATION_PREFIX + n));
    if (podman && !HARMLESS_IN_ENV.has(name)) {
      parseSetting(name, value, where);
      ignored.push(`${where}: not taken from a podman config (podman before 4.6 copies an image's annotations into it); ignored. Use podman --runtime-flag ${flagName(name)}=${value}`);
      continue;
    }
    chosen.set(name, { value, where });
  }

  let settings: ContainerSettings = DEFAULT_SETTINGS;
  for (const [name, { value, where }] of chosen) {
    settings = { ...settings, ...parseSetting(name, value, where), origins: { ...settings.origins, [name]: where } };
  }
  return { settings, ignored };
}

/** The settings a config alone gives (no runtime flags); the ignored ones are dropped silently. */
export function readSettings(spec: Spec): ContainerSettings {
  return resolveSettings(spec, {}).settings;
}
