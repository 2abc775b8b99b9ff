// delete: runc deletes the container, then sysrunc undoes what its create did. Docker calls delete
// after every stop, containerd after every exit, and both ignore "does not exist" errors.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Invocation } from '../../oci/invocation.ts';
import { parseDeleteArgs } from '../../oci/command-args.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { queryContainerState } from '../../oci/runtime-state.ts';
import { DEFAULT_RUNC_ROOT, releaseContainer } from '../release.ts';
import { oneLine } from '../../errors.ts';
import { reportWarning } from '../report-error.ts';

export async function deleteCommand(inv: Invocation): Promise<number> {
  const args = parseDeleteArgs(inv.commandArgs);
  const config = loadSysruncConfig();
  const runtime = resolveRuntimeBinary(config.runtime);
  const runtimeRoot = path.resolve(inv.globals.root ?? DEFAULT_RUNC_ROOT);

  const result = spawnSync(runtime, inv.argv, { stdio: 'inherit', argv0: runtime });
  const code = result.status ?? 1;
  // Undo only once runc no longer has the container: a refused delete (still running, no --force)
  // must leave everything in place.
  if (code !== 0 && queryContainerState(runtime, inv.globals.root, args.id).kind !== 'missing') return code;
  try {
    await releaseContainer(config.managerSocket, args.id, runtimeRoot);
  } catch (err) {
    // runc's delete stands; the manager releases the leftovers when it next reconciles.
    reportWarning(`delete ${args.id}: ${oneLine(err)}`, inv.globals);
  }
  return code;
}
