// The per-call binary (dist/sysrunc-call, compiled with Bun; dist/sysrunc.mjs under Node where Bun
// is missing). bin/sysrunc runs it as a child and execs runc itself afterwards, so this never
// needs execve: create/run (prepare the bundle), exec (grant capabilities in the process file),
// the synchronous delete, --version. Everything else bin/sysrunc hands to runc directly.
import { effectiveCommand, parseInvocation, salvageLogOptions, UsageError, type Invocation } from '../oci/invocation.ts';
import { SysruncError } from '../common/errors.ts';
import { writeSync } from 'node:fs';
import { reportError } from './report-error.ts';
import { loadSysruncConfig } from '../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../oci/runtime-binary.ts';
import { createCommand } from './commands/create.ts';
import { deleteCommand } from './commands/delete.ts';
import { execCommand } from './commands/exec.ts';
import { versionCommand } from './commands/version.ts';
import { passthroughCommand } from './commands/passthrough.ts';
import { superviseCommand } from './commands/supervise.ts';
import { featuresCommand } from './commands/features.ts';

// Static imports: the compiled binary carries them as precompiled bytecode, and a dynamic import
// cost ~3 ms of each call.
async function dispatch(inv: Invocation): Promise<number> {
  if (process.env.SYSRUNC_SUPERVISE !== undefined && inv.command === 'run') return superviseCommand(inv);
  const command = effectiveCommand(inv);
  switch (command) {
    case '--version':
      return versionCommand(inv);
    case 'create':
    case 'run':
      return createCommand(inv, command);
    case 'delete':
      return deleteCommand(inv);
    case 'exec':
      return execCommand(inv);
    case 'features':
      return featuresCommand(inv);
    default:
      return passthroughCommand(inv);
  }
}

async function main(argv: readonly string[]): Promise<void> {
  // bin/sysrunc reads simple config files itself and asks here for the others.
  if (process.env.SYSRUNC_PRINT_CONFIG !== undefined) return printConfig(argv);
  let inv: Invocation;
  try {
    inv = parseInvocation(argv);
  } catch (err) {
    reportError(err instanceof UsageError ? err : new SysruncError(String(err)), salvageLogOptions(argv));
    process.exit(1);
  }
  try {
    // bin/sysrunc found no runtime to exec: this reports it (resolveRuntimeBinary throws).
    if (process.env.SYSRUNC_CHECK_RUNTIME !== undefined) resolveRuntimeBinary(loadSysruncConfig().runtime);
    process.exitCode = await dispatch(inv);
  } catch (err) {
    reportError(err, inv.globals);
    process.exit(err instanceof SysruncError ? err.exitCode : 1);
  }
}

/** The two values bin/sysrunc needs, one a line, or the config's error in the caller's log. */
function printConfig(argv: readonly string[]): void {
  try {
    const config = loadSysruncConfig();
    if (/[\n\0]/.test(config.runtime + config.managerSocket)) throw new SysruncError(`config ${config.configPath}: a value holds a newline or NUL`);
    writeSync(1, `${config.runtime}\n${config.managerSocket}\n`);
  } catch (err) {
    reportError(err, salvageLogOptions(argv));
    process.exit(err instanceof SysruncError ? err.exitCode : 1);
  }
}

// Not a top-level await: bytecode compilation (--bytecode) needs a CommonJS-compatible entry.
void main(process.argv.slice(2));
