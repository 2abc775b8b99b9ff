// Whether a registered container still exists. runc keeps <root>/<id>/state.json from create until
// delete; a create that has not reached runc yet is recognised by its shim process still running.
import { processStartTime } from '../host/process-stat.ts';

export { processStartTime };
export { runcKnowsContainer } from '../oci/runtime-state.ts';


export function processIsAlive(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}
