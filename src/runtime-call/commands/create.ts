// create and run, the per-call side: bin/sysrunc runs this (where the C client,
// dist/sysrunc-prepare-call, is missing or could not get an answer), then execs runc itself with
// the prepared bundle. All the work (reading the bundle, transforms, host actions, writing the
// transformed config into a bundle of the manager's own) is one request to the manager; the
// caller's bundle is never written to. Output for bin/sysrunc: launcherLines (prepare-request.ts).
import { writeSync } from 'node:fs';
import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { callManager } from '../../manager-client/call.ts';
import { processStartTime } from '../../host/process-stat.ts';
import { callerPid } from '../caller.ts';
import { reportWarning } from '../report-error.ts';
import { faultPoint } from '../../testing/fault.ts';
import { SysruncError } from '../../common/errors.ts';
import { managerWaitMs } from '../../manager-client/reply.ts';
import { launcherLines, parseCreateCall, prepareParams } from '../prepare-request.ts';

export async function createCommand(inv: Invocation, command: 'create' | 'run'): Promise<number> {
  const call = parseCreateCall(inv, command, process.cwd());
  const config = loadSysruncConfig();
  // bin/sysrunc execs it once the container is prepared: a missing one is reported before that.
  resolveRuntimeBinary(config.runtime);
  // The manager watches the process that becomes runc: its exit without a container means failure.
  const caller = callerPid();
  // The C client's request died with its manager (bin/sysrunc says how): sent again below, as a
  // lost request of this binary's own would be, unless resending is off.
  const lost = process.env.SYSRUNC_PREPARE_LOST;
  if (lost !== undefined && lost !== '' && managerWaitMs() === 0) throw new SysruncError(`manager at ${config.managerSocket}: prepare: read: ${lost}`);
  const prepared = await callManager(config.managerSocket, 'prepare', prepareParams(call, caller, processStartTime(caller) ?? ''));
  faultPoint('create:answered');
  for (const warning of prepared.warnings) reportWarning(warning, inv.globals);
  writeSync(1, launcherLines(call, prepared));
  return 0;
}
