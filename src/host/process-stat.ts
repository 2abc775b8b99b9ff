import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** Field 3: R, S, D, T, Z (zombie), X (dead)... */
  readonly state: string;
  /** Field 4: the parent's pid. */
  readonly parent: number;
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
  const [state, parent, startTime] = [fields[0], fields[1], fields[19]];
  return state === undefined || parent === undefined || startTime === undefined ? undefined : { state, parent: Number(parent), startTime };
}

/** The parent's pid (field 4 of /proc/<pid>/stat); undefined once the process is gone. */
export function parentOf(pid: number): number | undefined {
  return readProcStat(pid)?.parent;
}

/** The start time of a process (field 22 of /proc/<pid>/stat), to tell a reused pid apart. */
export function processStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}
