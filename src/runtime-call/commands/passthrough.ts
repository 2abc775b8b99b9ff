import { spawnSync } from 'node:child_process';
import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';

/**
 * What bin/sysrunc hands straight to runc never comes here; this is for a direct call of the
 * per-call binary: runc as a child, same argv and stdio, its exit code.
 */
export function passthroughCommand(inv: Invocation): number {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  const result = spawnSync(runtime, inv.argv, { stdio: 'inherit' });
  return result.status ?? 1;
}
