// Whether a registered container still exists. runc keeps <root>/<id>/state.json from create until
// delete; a create that has not reached runc yet is recognised by its shim process still running.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export function runcKnowsContainer(runtimeRoot: string, id: string): boolean {
  return existsSync(path.join(runtimeRoot, id, 'state.json'));
}

/** The start time of a process (field 22 of /proc/<pid>/stat), to tell a reused pid apart. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

export function processIsAlive(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}
