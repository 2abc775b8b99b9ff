// A process the test process is not the parent of, as a container's init is not the manager's child.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { processStartTime, type KnownProcess } from '../../src/manager/liveness.ts';

/** A `sleep` started by a shell that has exited: it runs until killed. */
export function orphanSleep(): KnownProcess {
  const pid = Number(execFileSync('sh', ['-c', 'sleep 1000 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
  const startTime = processStartTime(pid);
  assert.ok(startTime !== undefined, `sleep ${pid} is not running`);
  return { pid, startTime };
}

/** SIGKILL, for a finally: a process already gone (and reaped) is no error. */
export function killIfRunning(p: KnownProcess): void {
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
