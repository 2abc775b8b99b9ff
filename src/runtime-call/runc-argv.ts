// runc's argv for a prepared create or run, made where argv was parsed (src/oci): the caller's argv
// less sysrunc's own global flags, `--bundle <runc bundle>` right after the subcommand, the
// caller's --bundle dropped and a relative --console-socket replaced by the absolute one (runc
// resolves it against the bundle, which it chdirs to). What bin/sysrunc's rebuild loop makes of the
// per-call binary's lines; the manager gives it to the C client, which then execs runc itself.
import type { Invocation } from '../oci/invocation.ts';
import { CREATE_FLAGS, RUN_FLAGS } from '../oci/runc-grammar.ts';

const FLAG = /^--?([^=]*)(=.*)?$/s;

export function preparedRuncArgv(inv: Invocation, command: 'create' | 'run', runcBundle: string, consoleSocket: string): string[] {
  const takesValue = new Set((command === 'run' ? RUN_FLAGS : CREATE_FLAGS).filter((f) => f.takesValue).flatMap((f) => f.names));
  const out = [...inv.globalArgs, inv.command ?? command, '--bundle', runcBundle];
  const args = inv.commandArgs;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const flag = FLAG.exec(arg);
    // `--` or the first positional (the id): the rest is runc's as given.
    if (arg === '--' || arg === '-' || flag === null) {
      out.push(...args.slice(i));
      break;
    }
    const name = flag[1] as string;
    const inline = flag[2] !== undefined;
    const value = inline ? undefined : args[i + 1];
    if (!inline && takesValue.has(name)) i++;
    if (name === 'bundle' || name === 'b') continue;
    if (name === 'console-socket' && consoleSocket !== '') {
      out.push(...(inline ? [`${arg.slice(0, arg.indexOf('='))}=${consoleSocket}`] : [arg, consoleSocket]));
      continue;
    }
    out.push(arg);
    if (!inline && takesValue.has(name) && value !== undefined) out.push(value);
  }
  return out;
}
