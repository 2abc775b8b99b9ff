// A foreground `run` (no --detach, no --keep) of a container whose cleanup must be over before
// the caller hears back (store volumes, ownership changed on disk): runc deletes such a container
// itself when it exits, so something must stay to wait for it and then for the manager. bin/sysrunc
// comes here with the argv it would have exec'd (SYSRUNC_SUPERVISE set); every other run is
// runc's alone.
import { spawn, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import path from 'node:path';
import type { Invocation } from '../../oci/invocation.ts';
import { parseCreateArgs } from '../../oci/command-args.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { callManager } from '../../manager-client/call.ts';
import { SysruncError, oneLine } from '../../common/errors.ts';
import { reportWarning } from '../report-error.ts';
import { DEFAULT_RUNC_ROOT } from '../runc-root.ts';

// The signals runc run forwards to the container (runc's signal.go forwards all it can catch).
const FORWARDED: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];

export async function superviseCommand(inv: Invocation): Promise<number> {
  const args = parseCreateArgs('run', inv.commandArgs);
  const config = loadSysruncConfig();
  const runtime = resolveRuntimeBinary(config.runtime);
  const code = await runForeground(runtimeCommand(runtime, args.bundle, inv.argv), args.preserveFds);
  try {
    await callManager(config.managerSocket, 'release', { id: args.id, runtimeRoot: path.resolve(inv.globals.root ?? DEFAULT_RUNC_ROOT) });
  } catch (err) {
    reportWarning(`run ${args.id}: ${oneLine(err)}`, inv.globals);
  }
  return code;
}

/**
 * runc's command line: through sysrunc-bundle-exec when bin/sysrunc found it (the prepared config
 * over the caller's in runc's own mount namespace, so state.bundle is the caller's), as it would
 * have exec'd it.
 */
function runtimeCommand(runtime: string, bundle: string, argv: readonly string[]): readonly string[] {
  const bundleExec = process.env.SYSRUNC_BUNDLE_EXEC;
  const preparedConfig = process.env.SYSRUNC_PREPARED_CONFIG;
  if (bundleExec === undefined || bundleExec === '' || preparedConfig === undefined) return [runtime, ...argv];
  return [bundleExec, preparedConfig, path.resolve(bundle), runtime, ...argv];
}

/** fds runc hands to the container: stdio, $LISTEN_FDS when $LISTEN_PID is the caller's, --preserve-fds. */
function inheritedFdCount(preserveFds: number, env: NodeJS.ProcessEnv): number {
  const listenFds = Number(env.LISTEN_FDS);
  const listening = env.LISTEN_PID === env.SYSRUNC_CALLER_PID && Number.isInteger(listenFds) && listenFds > 0;
  return 3 + (listening ? listenFds : 0) + preserveFds;
}

/**
 * runc as a child with the same stdio and inherited fds, signals forwarded; resolves with its exit
 * code (128 + n when it died of signal n, as a shell reports it).
 */
function runForeground(command: readonly string[], preserveFds: number): Promise<number> {
  const [runtime = '', ...argv] = command;
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < inheritedFdCount(preserveFds, process.env); fd++) stdio.push(fd);
  // runc takes $LISTEN_FDS only when $LISTEN_PID is its own pid: a shell re-points it at itself
  // and then becomes runc, keeping that pid.
  const listening = process.env.LISTEN_PID !== undefined && process.env.LISTEN_PID === process.env.SYSRUNC_CALLER_PID;
  const [file, args] = listening ? ['/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', runtime, ...argv]] : [runtime, [...argv]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const signal of FORWARDED) process.on(signal, forward);
    child.once('error', (err) => reject(new SysruncError(`run: ${runtime}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      resolve(signal !== null ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
    });
  });
}
