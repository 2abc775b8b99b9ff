// create and run, the per-call side: bin/sysrunc runs this, then execs runc itself with the
// prepared bundle. All the work (reading the bundle, transforms, host actions, writing the
// transformed config into a bundle of the manager's own) is one request to the manager; the
// caller's bundle is never written to. Output for bin/sysrunc, one value per line: the prepared
// bundle; the --console-socket to pass instead of a relative one (runc resolves a relative one
// against the bundle), or an empty line; whether cleanup after runc must be waited for (sync/async);
// the caller's bundle, absolute (last: it is the one value that is not sysrunc's own).
import path from 'node:path';
import { writeSync } from 'node:fs';
import type { Invocation } from '../../oci/invocation.ts';
import { parseCreateArgs } from '../../oci/command-args.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { callManager } from '../../manager-client/call.ts';
import { processStartTime } from '../../host/process-stat.ts';
import { callerPid } from '../caller.ts';
import { reportWarning } from '../report-error.ts';
import { DEFAULT_RUNC_ROOT } from '../runc-root.ts';
import { faultPoint } from '../../testing/fault.ts';
import { parseRuntimeFlags } from '../../spec-transform/setting-sources.ts';

export async function createCommand(inv: Invocation, command: 'create' | 'run'): Promise<number> {
  const args = parseCreateArgs(command, inv.commandArgs);
  // A bad flag in the runtime's registration is reported here, before the manager is asked.
  parseRuntimeFlags(inv.sysruncFlags);
  const config = loadSysruncConfig();
  // bin/sysrunc execs it once the container is prepared: a missing one is reported before that.
  resolveRuntimeBinary(config.runtime);
  const bundle = path.resolve(args.bundle);
  // The manager watches the process that becomes runc: its exit without a container means failure.
  const caller = callerPid();
  const prepared = await callManager(config.managerSocket, 'prepare', {
    id: args.id,
    command,
    bundle,
    runtimeRoot: path.resolve(inv.globals.root ?? DEFAULT_RUNC_ROOT),
    callerPid: caller,
    callerStartTime: processStartTime(caller) ?? '',
    ...(inv.globals.systemdCgroup ? { systemdCgroup: true } : {}),
    ...(Object.keys(inv.sysruncFlags).length === 0 ? {} : { runtimeFlags: inv.sysruncFlags }),
  });
  faultPoint('create:answered');
  for (const warning of prepared.warnings) reportWarning(warning, inv.globals);
  const consoleSocket = args.consoleSocket !== undefined && !path.isAbsolute(args.consoleSocket) ? path.resolve(bundle, args.consoleSocket) : '';
  writeSync(1, `${prepared.bundle}\n${consoleSocket}\n${prepared.cleanup}\n${bundle}\n`);
  return 0;
}
