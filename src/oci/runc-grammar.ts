// runc's command-line grammar (1.1-1.3), defined once: the global flags, and the flags of each
// subcommand sysrunc reads. src/oci/invocation.ts, command-args.ts and exec-args.ts parse with
// these tables; bin/sysrunc (POSIX sh, the hot path) carries its own copies as case patterns, and
// test/unit/runc-grammar-launcher.test.ts checks that those are exactly the spellings below.
// urfave/cli (Go's flag package) accepts every name as `-x`, `--x`, `-x=v`, `--x=v`, and a value
// flag also as `-x v`; a boolean never takes a separate value.
import type { FlagSpec } from './flags.ts';

export type { FlagSpec } from './flags.ts';

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { names: ['debug'], takesValue: false },
  { names: ['log'], takesValue: true },
  { names: ['log-format'], takesValue: true },
  { names: ['root'], takesValue: true },
  // Ignored since runc 1.2, still accepted with its value.
  { names: ['criu'], takesValue: true },
  { names: ['systemd-cgroup'], takesValue: false },
  // A string flag in runc ('true', 'false' or 'auto'), so `--rootless X` consumes X.
  { names: ['rootless'], takesValue: true },
  { names: ['help', 'h'], takesValue: false },
  { names: ['version', 'v'], takesValue: false },
];

/** Subcommand names runc knows; anything else is passed through for runc to reject. */
export const RUNC_COMMANDS = [
  'checkpoint', 'create', 'delete', 'events', 'exec', 'features', 'kill', 'list', 'pause', 'ps',
  'restore', 'resume', 'run', 'spec', 'start', 'state', 'update', 'help',
] as const;

export const CREATE_FLAGS: readonly FlagSpec[] = [
  { names: ['bundle', 'b'], takesValue: true },
  { names: ['console-socket'], takesValue: true },
  // runc 1.2+.
  { names: ['pidfd-socket'], takesValue: true },
  { names: ['pid-file'], takesValue: true },
  { names: ['no-pivot'], takesValue: false },
  { names: ['no-new-keyring'], takesValue: false },
  { names: ['preserve-fds'], takesValue: true },
];

export const RUN_FLAGS: readonly FlagSpec[] = [
  ...CREATE_FLAGS,
  { names: ['detach', 'd'], takesValue: false },
  { names: ['keep'], takesValue: false },
  { names: ['no-subreaper'], takesValue: false },
];

export const DELETE_FLAGS: readonly FlagSpec[] = [{ names: ['force', 'f'], takesValue: false }];

export const EXEC_FLAGS: readonly FlagSpec[] = [
  { names: ['console-socket'], takesValue: true },
  // runc 1.2+.
  { names: ['pidfd-socket'], takesValue: true },
  { names: ['cwd'], takesValue: true },
  { names: ['env', 'e'], takesValue: true },
  { names: ['tty', 't'], takesValue: false },
  { names: ['user', 'u'], takesValue: true },
  { names: ['additional-gids', 'g'], takesValue: true },
  { names: ['process', 'p'], takesValue: true },
  { names: ['detach', 'd'], takesValue: false },
  { names: ['pid-file'], takesValue: true },
  { names: ['process-label'], takesValue: true },
  { names: ['apparmor'], takesValue: true },
  { names: ['no-new-privs'], takesValue: false },
  { names: ['cap', 'c'], takesValue: true },
  { names: ['preserve-fds'], takesValue: true },
  { names: ['cgroup'], takesValue: true },
  { names: ['ignore-paused'], takesValue: false },
];

/** Words Go's strconv.ParseBool reads as true (`--detach=t`). */
export const TRUE_WORDS: readonly string[] = ['1', 't', 'T', 'true', 'TRUE', 'True'];

/** The flag named `name` (any of its names) in `specs`. */
export function flagNamed(specs: readonly FlagSpec[], name: string): FlagSpec {
  const spec = specs.find((candidate) => candidate.names.includes(name));
  if (spec === undefined) throw new Error(`runc grammar: no flag ${name}`);
  return spec;
}

/** Every way runc accepts the flag without a value attached: `-x`, `--x` for each name. */
export function spellings(spec: FlagSpec): string[] {
  return spec.names.flatMap((name) => [`--${name}`, `-${name}`]);
}

/** Spellings of the flags of `specs` that take a separate value (`--root <dir>`). */
export function valueFlagSpellings(specs: readonly FlagSpec[]): string[] {
  return specs.filter((spec) => spec.takesValue).flatMap(spellings);
}
