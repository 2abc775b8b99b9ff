import { spawnSync } from 'node:child_process';
import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { SysruncError } from '../../errors.ts';
import { SYSRUNC_VERSION } from '../../version.ts';

// go-runc (containerd) and dockerd parse `--version`: the first line must stay runc's
// "runc version X", then "commit:", then "spec:". sysrunc adds its own line after them.
export function versionCommand(inv: Invocation): number {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  const result = spawnSync(runtime, inv.argv, { stdio: ['inherit', 'pipe', 'inherit'] });
  if (result.error) throw new SysruncError(`${runtime} --version: ${result.error.message}`);
  process.stdout.write(result.stdout);
  process.stdout.write(`sysrunc version ${SYSRUNC_VERSION}\n`);
  return result.status ?? 1;
}
