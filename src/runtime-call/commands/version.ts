import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import type { Invocation } from '../../oci/invocation.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { SysruncError } from '../../common/errors.ts';
import { SYSRUNC_VERSION } from '../../common/version.ts';

// go-runc (containerd) and dockerd parse `--version`: the first line must stay runc's
// "runc version X", then "commit:", then "spec:". sysrunc adds its own line after them.
export function versionCommand(inv: Invocation): number {
  const runtime = resolveRuntimeBinary(loadSysruncConfig().runtime);
  const result = spawnSync(runtime, inv.argv, { stdio: ['inherit', 'pipe', 'inherit'] });
  if (result.error) throw new SysruncError(`${runtime} --version: ${result.error.message}`);
  try {
    // Straight to fd 1: a reader that stops early (`| head -1`) must not turn into a stack trace.
    writeSync(1, Buffer.concat([result.stdout, Buffer.from(`sysrunc version ${SYSRUNC_VERSION}\n`)]));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
  }
  return result.status ?? 1;
}
