// The runc command line as dockerd and containerd's runc v2 shim produce it
// (../shared/docs/runc-cli-contract.md): global flags, then a subcommand and its own flags.
// Only what sysrunc acts on is interpreted; the argv itself is always handed to runc unchanged.
import { boolFlag, FlagError, parseFlags, stringFlag } from './flags.ts';
import { GLOBAL_FLAGS } from './runc-grammar.ts';

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
  /** The argv after the program name as received, less sysrunc's own global flags (runc's argv). */
  readonly argv: readonly string[];
  /**
   * sysrunc's own global flags, `--sysrunc-<name>=<value>` before the subcommand (the operator's
   * runtimeArgs): flag name without dashes -> value. bin/sysrunc never hands them to runc.
   */
  readonly sysruncFlags: Readonly<Record<string, string>>;
  readonly globals: GlobalOptions;
  /** Global flags as they appeared (runtimeArgs from daemon.json come first, then the shim's). */
  readonly globalArgs: readonly string[];
  readonly command: string | undefined;
  readonly commandArgs: readonly string[];
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export { RUNC_COMMANDS } from './runc-grammar.ts';

export function parseInvocation(received: readonly string[]): Invocation {
  const { argv, sysruncFlags } = splitSysruncFlags(received);
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
    sysruncFlags,
  };
}

const SYSRUNC_FLAG = /^--?(sysrunc-[^=]*)(=(.*))?$/s;

/** Takes `--sysrunc-<name>=<value>` out of the global flags (before the subcommand), as bin/sysrunc does. */
function splitSysruncFlags(received: readonly string[]): { argv: string[]; sysruncFlags: Record<string, string> } {
  const argv: string[] = [];
  const sysruncFlags: Record<string, string> = {};
  const valueFlags = new Set(GLOBAL_FLAGS.filter((f) => f.takesValue).flatMap((f) => f.names));
  for (let i = 0; i < received.length; i++) {
    const arg = received[i] as string;
    const match = SYSRUNC_FLAG.exec(arg);
    if (match !== null) {
      if (match[2] === undefined) throw new UsageError(`${arg}: sysrunc's flags take their value after "=" (${arg}=<value>)`);
      sysruncFlags[match[1] as string] = match[3] as string;
      continue;
    }
    argv.push(arg);
    if (arg === '--' || !arg.startsWith('-') || arg.length < 2) {
      argv.push(...received.slice(i + 1));
      break;
    }
    // `--root <dir>`: the next argument is the flag's value, even if it looks like one of ours.
    if (!arg.includes('=') && valueFlags.has(arg.replace(/^--?/, '')) && i + 1 < received.length) argv.push(received[++i] as string);
  }
  return { argv, sysruncFlags };
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

/**
 * What runc does with this argv: help and version flags before the subcommand win over it (urfave/cli
 * checks help, then version, before running a command), as bin/sysrunc's `subcommand` reads it.
 */
export function effectiveCommand(inv: Pick<Invocation, 'globals' | 'command'>): string | undefined {
  if (inv.globals.help) return '--help';
  if (inv.globals.version) return '--version';
  return inv.command;
}
