// Whether a registered container still exists. runc keeps <root>/<id>/state.json from create until
// delete; a create that has not reached runc yet is recognised by its shim process still running.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export function runcKnowsContainer(runtimeRoot: string, id: string): boolean {
  return existsSync(path.join(runtimeRoot, id, 'state.json'));
}

interface ProcStat {
  /** Field 3: R, S, D, T, Z (zombie), X (dead)... */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: string;
}

function readProcStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, startTime] = [fields[0], fields[19]];
  return state === undefined || startTime === undefined ? undefined : { state, startTime };
}

/** The start time of a process (field 22 of /proc/<pid>/stat), to tell a reused pid apart. */
export function processStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}

/**
 * Whether the process that had `startTime` still runs. A zombie (Z) or dead (X) process does not:
 * it has exited and only waits for its parent to reap it (a manager killed -9 under a slow parent).
 */
export function processIsAlive(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}
