import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { SysruncError } from '../common/errors.ts';

/** Resolves the real runc like execvp would, so a missing binary is reported before any change. */
export function resolveRuntimeBinary(runtime: string, envPath = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): string {
  const candidates = runtime.includes('/')
    ? [runtime]
    : envPath.split(':').filter(Boolean).map((dir) => path.join(dir, runtime));
  for (const candidate of candidates) {
    if (isExecutableFile(candidate)) return path.resolve(candidate);
  }
  const where = runtime.includes('/') ? `${runtime}: no such executable file` : `"${runtime}": executable file not found in $PATH`;
  throw new SysruncError(`runtime ${where} (set SYSRUNC_RUNTIME or "runtime" in /etc/sysrunc/config.json)`);
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
