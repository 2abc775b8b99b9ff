// Entry of the Node side of sysrunc. bin/sysrunc already sent the pass-through subcommands
// straight to runc; what arrives here is create, run, delete, --version, or something it was
// unsure about (which is passed through too, after a full parse).
import { parseInvocation, salvageLogOptions, UsageError, type Invocation } from '../oci/invocation.ts';
import { SysruncError } from '../errors.ts';
import { reportError } from './report-error.ts';

// Each subcommand is loaded on demand (esbuild splits them into chunks): a delete should not pay
// for parsing create's schema validator. Node's own start is already ~60 ms of every call.
async function dispatch(inv: Invocation): Promise<number> {
  switch (inv.command) {
    case 'create':
    case 'run':
      return (await import('./commands/create.ts')).createCommand(inv, inv.command);
    case 'delete':
      return (await import('./commands/delete.ts')).deleteCommand(inv);
    case 'exec':
      return (await import('./commands/exec.ts')).execCommand(inv);
    case undefined:
      if (inv.globals.version) return (await import('./commands/version.ts')).versionCommand(inv);
      return (await import('./commands/passthrough.ts')).passthroughCommand(inv);
    default:
      return (await import('./commands/passthrough.ts')).passthroughCommand(inv);
  }
}

async function main(argv: readonly string[]): Promise<void> {
  let inv: Invocation;
  try {
    inv = parseInvocation(argv);
  } catch (err) {
    reportError(err instanceof UsageError ? err : new SysruncError(String(err)), salvageLogOptions(argv));
    process.exit(1);
  }
  try {
    process.exitCode = await dispatch(inv);
  } catch (err) {
    reportError(err, inv.globals);
    process.exit(err instanceof SysruncError ? err.exitCode : 1);
  }
}

await main(process.argv.slice(2));
