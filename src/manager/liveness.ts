// Whether a registered container still exists. runc keeps <root>/<id>/state.json from create until
// delete; a create that has not reached runc yet is recognised by its shim process still running.
import { processStartTime, readProcStat } from '../host/process-stat.ts';

export { processStartTime };
export { runcKnowsContainer } from '../oci/runtime-state.ts';

/**
 * Whether the process that had `startTime` still runs. A zombie (Z) or dead (X) process does not:
 * it has exited and only waits for its parent to reap it (a manager killed -9 under a slow parent).
 */
export function processIsAlive(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** A process known by its pid and start time (a container's init the manager watches). */
export interface KnownProcess {
  readonly pid: number;
  readonly startTime: string;
}
