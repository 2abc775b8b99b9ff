// The subcommands sysrunc acts on, parsed with runc's own flag sets so that a flag runc would
// reject is rejected before sysrunc changes anything on the host.
import { containerIdProblem } from './container-id.ts';
import { boolFlag, FlagError, parseFlags, stringFlag, type FlagSpec } from './flags.ts';
import { CREATE_FLAGS, DELETE_FLAGS, RUN_FLAGS } from './runc-grammar.ts';
import { UsageError } from './invocation.ts';

export interface CreateArgs {
  readonly id: string;
  /** As given (relative to the working directory), default the working directory. */
  readonly bundle: string;
  /** As given; runc resolves a relative one against the bundle directory. */
  readonly consoleSocket: string | undefined;
  readonly preserveFds: number;
  /** run only: whether runc returns before the container exits. */
  readonly detach: boolean;
  /** run only: whether runc keeps the container after it exits. */
  readonly keep: boolean;
}

export interface DeleteArgs {
  readonly id: string;
  readonly force: boolean;
}

function parse(command: string, args: readonly string[], specs: readonly FlagSpec[]) {
  try {
    const parsed = parseFlags(args, specs);
    if (parsed.positionals.length !== 1) {
      throw new UsageError(`"${command}" requires exactly 1 argument(s)`);
    }
    const id = parsed.positionals[0] as string;
    const problem = containerIdProblem(id);
    if (problem !== undefined) throw new UsageError(problem);
    return { parsed, id };
  } catch (err) {
    if (err instanceof FlagError) throw new UsageError(`${command}: ${err.message}`);
    throw err;
  }
}

export function parseCreateArgs(command: 'create' | 'run', args: readonly string[]): CreateArgs {
  const { parsed, id } = parse(command, args, command === 'run' ? RUN_FLAGS : CREATE_FLAGS);
  const fds = stringFlag(parsed, 'preserve-fds') ?? '0';
  if (!/^\d+$/.test(fds)) {
    throw new UsageError(`${command}: invalid value "${fds}" for flag -preserve-fds: parse error`);
  }
  return {
    id,
    bundle: stringFlag(parsed, 'bundle') ?? '.',
    consoleSocket: stringFlag(parsed, 'console-socket'),
    preserveFds: Number(fds),
    detach: boolFlag(parsed, 'detach'),
    keep: boolFlag(parsed, 'keep'),
  };
}

export function parseDeleteArgs(args: readonly string[]): DeleteArgs {
  const { parsed, id } = parse('delete', args, DELETE_FLAGS);
  return { id, force: boolFlag(parsed, 'force') };
}
