// The raw argv a C client sends for a runtime call (prepareCall from dist/sysrunc-prepare-call,
// deleteCall from dist/sysrunc-delete-call), parsed with the per-call binary's code (src/oci). The
// clients know nothing of runc's flags, so a bad call comes back as the error together with where
// its message goes (the call's --log and --log-format, salvaged from argv where it does not parse).
import { SysruncError } from '../common/errors.ts';
import { effectiveCommand, parseInvocation, salvageLogOptions, UsageError, type Invocation } from '../oci/invocation.ts';
import type { LogTarget } from '../runtime-call/report-error.ts';

export type ClientCall<T> = { readonly inv: Invocation; readonly call: T } | { readonly error: Error; readonly logTarget: LogTarget };

/**
 * argv parsed, its command one of `commands` (bin/sysrunc runs each client for those only:
 * test/unit/runc-grammar-launcher.test.ts), and `parse` of what the method needs of it.
 */
export function parseClientCall<C extends string, T>(argv: readonly string[], method: string, commands: readonly C[], parse: (inv: Invocation, command: C) => T): ClientCall<T> {
  let inv: Invocation;
  try {
    inv = parseInvocation(argv);
  } catch (err) {
    return { error: err instanceof UsageError ? err : new SysruncError(String(err)), logTarget: salvageLogOptions(argv) };
  }
  try {
    const command = commands.find((c) => c === effectiveCommand(inv));
    if (command === undefined) throw new SysruncError(`${method}: the call is ${JSON.stringify(effectiveCommand(inv) ?? '')}, not ${commands.join(' or ')}`);
    return { inv, call: parse(inv, command) };
  } catch (err) {
    return { error: err instanceof Error ? err : new SysruncError(String(err)), logTarget: inv.globals };
  }
}
