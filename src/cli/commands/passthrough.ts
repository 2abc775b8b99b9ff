import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { execReplace } from '../../host/exec.ts';

/** Replaces this process with the real runc, argv unchanged: pid, fds and exit code stay runc's. */
export function passthroughCommand(inv: Invocation): never {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  return execReplace(runtime, [runtime, ...inv.argv], process.env);
}
