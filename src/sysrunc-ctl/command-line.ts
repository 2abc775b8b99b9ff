// Where a command's own options end and the command it runs begins, the way docker, ctr and
// kubectl read it: options anywhere before `--`, and `--` ends them; without `--`, the first
// argument past the fixed operands (ns and name, ns and id) starts the command, so
// `tenant exec acme db sh -c 'x'` runs `sh -c x`. Commander's passThroughOptions would stop at
// the first operand instead, taking `--rootfs` after the names for the entrypoint.
import type { Command } from 'commander';

export interface CommandTail {
  /** The subcommand's path under the program, e.g. ['tenant', 'run']. */
  readonly path: readonly string[];
  /** Operands before the command (ns and name). */
  readonly fixedOperands: number;
}

/** argv (node's, with the program at [1]) with `--` put where the command begins, if it lacks one. */
export function markCommandStart(program: Command, argv: readonly string[], tails: readonly CommandTail[]): string[] {
  const args = argv.slice(2);
  for (const tail of tails) {
    const at = subcommandEnd(args, tail.path);
    if (at === undefined) continue;
    const cmd = tail.path.reduce<Command | undefined>((c, name) => c?.commands.find((sub) => sub.name() === name), program);
    if (cmd === undefined) continue;
    const start = commandStart(cmd, args.slice(at), tail.fixedOperands);
    if (start === undefined) return [...argv];
    return [...argv.slice(0, 2), ...args.slice(0, at + start), '--', ...args.slice(at + start)];
  }
  return [...argv];
}

/** The index just past the subcommand path, if argv names it (its first words, options aside). */
function subcommandEnd(args: readonly string[], path: readonly string[]): number | undefined {
  let i = 0;
  for (const name of path) {
    while (i < args.length && (args[i] as string).startsWith('-')) i++;
    if (args[i] !== name) return undefined;
    i++;
  }
  return i;
}

/** Where the command starts in the subcommand's args; undefined if `--` marks it or none is there. */
function commandStart(cmd: Command, args: readonly string[], fixedOperands: number): number | undefined {
  let operands = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return undefined;
    if (arg.startsWith('-') && arg !== '-') {
      const option = cmd.options.find((o) => o.long === arg || o.short === arg);
      // A value in the next word (not `--x=v`, not a flag); unknown options are commander's to report.
      if (option !== undefined && (option.required || option.optional)) i++;
      continue;
    }
    if (operands === fixedOperands) return i;
    operands++;
  }
  return undefined;
}
