// runc exec (flags: runc-grammar.ts), to find the container id and the --process file. An argv that does
// not parse is passed to runc untouched: it will say what is wrong.
import { parseFlags, stringFlag } from './flags.ts';
import { EXEC_FLAGS } from './runc-grammar.ts';

export interface ExecArgs {
  readonly id: string;
  readonly processFile: string | undefined;
}

export function parseExecArgs(args: readonly string[]): ExecArgs | undefined {
  try {
    const parsed = parseFlags(args, EXEC_FLAGS);
    const id = parsed.positionals[0];
    return id === undefined ? undefined : { id, processFile: stringFlag(parsed, 'process') };
  } catch {
    return undefined;
  }
}
