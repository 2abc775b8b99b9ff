// delete, the synchronous form: runc deletes the container, then the manager undoes what create
// did, and only then does the caller hear back. bin/sysrunc comes here only for containers whose
// cleanup someone would notice if it came later (store volumes to sync out before dockerd removes
// the layer, ownership to revert); it runs runc's delete itself and passes its exit status in
// SYSRUNC_RUNC_STATUS. Every other delete is runc's alone, and the manager cleans up when it sees
// the container gone. Docker calls delete after every stop, containerd after every exit, and both
// ignore "does not exist" errors.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Invocation } from '../../oci/invocation.ts';
import { parseDeleteArgs } from '../../oci/command-args.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { runcKnowsContainer } from '../../oci/runtime-state.ts';
import { callManager } from '../../manager-client/call.ts';
import { DEFAULT_RUNC_ROOT } from '../runc-root.ts';
import { oneLine } from '../../common/errors.ts';
import { reportWarning } from '../report-error.ts';

export async function deleteCommand(inv: Invocation): Promise<number> {
  const args = parseDeleteArgs(inv.commandArgs);
  const config = loadSysruncConfig();
  const runtimeRoot = path.resolve(inv.globals.root ?? DEFAULT_RUNC_ROOT);
  const code = runcDeleteStatus(config.runtime, inv.argv);
  // Undo only once runc no longer has the container: a refused delete (still running, no --force)
  // must leave everything in place.
  if (code !== 0 && runcKnowsContainer(runtimeRoot, args.id)) return code;
  try {
    await callManager(config.managerSocket, 'release', { id: args.id, runtimeRoot });
  } catch (err) {
    // runc's delete stands; the manager releases the leftovers when it sees the container gone.
    reportWarning(`delete ${args.id}: ${oneLine(err)}`, inv.globals);
  }
  return code;
}

/** runc's delete, already run by bin/sysrunc (its status in the environment), or run here. */
function runcDeleteStatus(runtime: string, argv: readonly string[]): number {
  const given = process.env.SYSRUNC_RUNC_STATUS;
  if (given !== undefined && /^\d+$/.test(given)) return Number(given);
  const binary = resolveRuntimeBinary(runtime);
  return spawnSync(binary, argv, { stdio: 'inherit', argv0: binary }).status ?? 1;
}
