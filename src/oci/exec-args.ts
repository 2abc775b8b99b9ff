// runc exec's flags (1.1-1.3), to find the container id and the --process file. An argv that does
// not parse is passed to runc untouched: it will say what is wrong.
import { parseFlags, stringFlag, type FlagSpec } from './flags.ts';

const EXEC_FLAGS: readonly FlagSpec[] = [
  { names: ['console-socket'], takesValue: true },
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
