// The runc command line as dockerd and containerd's runc v2 shim produce it
// (../shared/docs/runc-cli-contract.md): global flags, then a subcommand and its own flags.
// Only what sysrunc acts on is interpreted; the argv itself is always handed to runc unchanged.
import { boolFlag, FlagError, parseFlags, stringFlag, type FlagSpec } from './flags.ts';

export type LogFormat = 'text' | 'json';

export interface GlobalOptions {
  readonly root: string | undefined;
  readonly log: string | undefined;
  readonly logFormat: LogFormat;
  readonly debug: boolean;
  readonly systemdCgroup: boolean;
  readonly rootless: string | undefined;
  readonly help: boolean;
  readonly version: boolean;
}

export interface Invocation {
  /** The argv after the program name, exactly as received. */
  readonly argv: readonly string[];
  readonly globals: GlobalOptions;
  /** Global flags as they appeared (runtimeArgs from daemon.json come first, then the shim's). */
  readonly globalArgs: readonly string[];
  readonly command: string | undefined;
  readonly commandArgs: readonly string[];
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { names: ['debug'], takesValue: false },
  { names: ['log'], takesValue: true },
  { names: ['log-format'], takesValue: true },
  { names: ['root'], takesValue: true },
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

export function parseInvocation(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseFlags(argv, GLOBAL_FLAGS);
  } catch (err) {
    if (err instanceof FlagError) throw new UsageError(err.message);
    throw err;
  }
  const logFormat = stringFlag(parsed, 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') {
    throw new UsageError(`invalid log-format: ${logFormat}`);
  }
  const [command, ...commandArgs] = parsed.positionals;
  return {
    argv,
    globals: {
      root: stringFlag(parsed, 'root'),
      log: stringFlag(parsed, 'log'),
      logFormat,
      debug: boolFlag(parsed, 'debug'),
      systemdCgroup: boolFlag(parsed, 'systemd-cgroup'),
      rootless: stringFlag(parsed, 'rootless'),
      help: boolFlag(parsed, 'help'),
      version: boolFlag(parsed, 'version'),
    },
    globalArgs: argv.slice(0, argv.length - parsed.positionals.length),
    command,
    commandArgs,
  };
}

/** Best-effort read of the log options, for reporting errors found before parsing succeeded. */
export function salvageLogOptions(argv: readonly string[]): Pick<GlobalOptions, 'log' | 'logFormat'> {
  let log: string | undefined;
  let logFormat: LogFormat = 'text';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--?(log|log-format)(?:=(.*))?$/.exec(arg);
    if (match === null) continue;
    const value = match[2] ?? argv[++i];
    if (match[1] === 'log') log = value;
    else if (value === 'json') logFormat = 'json';
  }
  return { log, logFormat };
}
