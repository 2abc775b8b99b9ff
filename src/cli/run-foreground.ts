import { spawn, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { SysruncError } from '../errors.ts';
import { receivedListenFds, runcInheritedFdCount } from './inherited-fds.ts';

// The signals runc run forwards to the container (runc's signal.go forwards all it can catch).
const FORWARDED: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];

/**
 * Runs runc as a child with the same stdio, the --preserve-fds fds and $LISTEN_FDS fds, forwarding
 * signals, and resolves with its exit code. If runc dies of a signal, so does this process (after
 * the caller's cleanup), as a shell would report it.
 */
export function runForeground(runtime: string, argv: readonly string[], preserveFds: number): Promise<number> {
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < runcInheritedFdCount(preserveFds); fd++) stdio.push(fd);
  // runc takes $LISTEN_FDS only when $LISTEN_PID is its own pid, and a child has a new pid: a
  // shell re-points LISTEN_PID at itself and then becomes runc, keeping that pid.
  const [file, args] = receivedListenFds()
    ? ['/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', runtime, ...argv.slice(1)]]
    : [runtime, argv.slice(1)];

  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const signal of FORWARDED) process.on(signal, forward);
    child.once('error', (err) => reject(new SysruncError(`run: ${runtime}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      if (signal !== null) {
        process.once('exit', () => process.kill(process.pid, signal));
        resolve(128 + (signalNumber(signal) ?? 0));
      } else {
        resolve(code ?? 1);
      }
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return constants.signals[signal];
}
