import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** Field 3: R, S, D, T, Z (zombie), X (dead)... */
  readonly state: string;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: string;
}

export function readProcStat(pid: number): ProcStat | undefined {
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
