// A create or run call as the manager's prepare request, from the parsed argv: the one place both
// callers build it, the per-call binary (commands/create.ts) and the manager itself answering the
// C client's prepareCall (manager/prepare-call.ts), so the two paths cannot drift apart.
import path from 'node:path';
import type { Invocation } from '../oci/invocation.ts';
import { parseCreateArgs } from '../oci/command-args.ts';
import { parseRuntimeFlags } from '../spec-transform/setting-sources.ts';
import type { Params, Result } from '../manager-api/v1.ts';
import { DEFAULT_RUNC_ROOT } from './runc-root.ts';

export interface CreateCall {
  readonly command: 'create' | 'run';
  readonly id: string;
  /** The caller's bundle, absolute. */
  readonly bundle: string;
  /** The --console-socket bin/sysrunc passes instead of a relative one (absolute), or ''. */
  readonly consoleSocket: string;
  readonly runtimeRoot: string;
  /** A run that waits for the container to exit (no --detach, no --keep). */
  readonly foreground: boolean;
  readonly inv: Invocation;
}

/**
 * Checks the subcommand's flags and sysrunc's own (a bad flag in the runtime's registration is
 * reported before the manager is asked) and resolves relative paths against `cwd`, the caller's
 * working directory. Throws UsageError or SysruncError, in runc's words.
 */
export function parseCreateCall(inv: Invocation, command: 'create' | 'run', cwd: string): CreateCall {
  const args = parseCreateArgs(command, inv.commandArgs);
  parseRuntimeFlags(inv.sysruncFlags);
  const bundle = path.resolve(cwd, args.bundle);
  // runc resolves a relative --console-socket against the bundle, where it chdirs.
  const consoleSocket = args.consoleSocket !== undefined && !path.isAbsolute(args.consoleSocket) ? path.resolve(bundle, args.consoleSocket) : '';
  const foreground = command === 'run' && !args.detach && !args.keep;
  return { command, id: args.id, bundle, consoleSocket, runtimeRoot: path.resolve(cwd, inv.globals.root ?? DEFAULT_RUNC_ROOT), foreground, inv };
}

/** The prepare request; the caller is the process that becomes runc (the manager watches it). */
export function prepareParams(call: CreateCall, callerPid: number, callerStartTime: string): Params<'prepare'> {
  const { inv } = call;
  return {
    id: call.id,
    command: call.command,
    bundle: call.bundle,
    runtimeRoot: call.runtimeRoot,
    callerPid,
    callerStartTime,
    ...(inv.globals.systemdCgroup ? { systemdCgroup: true } : {}),
    ...(Object.keys(inv.sysruncFlags).length === 0 ? {} : { runtimeFlags: inv.sysruncFlags }),
  };
}

/**
 * What bin/sysrunc reads, one value a line: the prepared bundle; the console socket or an empty
 * line; sync|async (whether cleanup after runc must be waited for); the caller's bundle (last: it
 * is the one value that is not sysrunc's own, so no character of it can shift the others).
 */
export function launcherLines(call: CreateCall, prepared: Result<'prepare'>): string {
  return `${prepared.bundle}\n${call.consoleSocket}\n${prepared.cleanup}\n${call.bundle}\n`;
}
