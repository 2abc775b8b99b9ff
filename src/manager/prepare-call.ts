// The manager's side of the C client (dist/sysrunc-prepare-call, src/runtime-call/native/
// prepare-call.c): a create or run call's argv parsed with the per-call binary's own code
// (src/oci, runtime-call/prepare-request.ts), then prepare as usual. Whatever goes wrong with the
// call is answered, not thrown: the client has no grammar to salvage --log and --log-format
// from, so the messages come back formatted, with where each goes, as the per-call binary would
// have written them (runtime-call/report-error.ts).
import path from 'node:path';
import { SysruncError } from '../common/errors.ts';
import { processStartTime } from '../host/process-stat.ts';
import type { Params, Result } from '../manager-api/v1.ts';
import { errorWrites, warningWrites, type LogTarget } from '../runtime-call/report-error.ts';
import { launcherLines, parseCreateCall, prepareParams } from '../runtime-call/prepare-request.ts';
import { preparedRuncArgv } from '../runtime-call/runc-argv.ts';
import { ServiceError } from './service-error.ts';
import { parseClientCall } from './client-call-argv.ts';

export interface PrepareCallHost {
  prepare(p: Params<'prepare'>): Promise<Result<'prepare'>>;
  /** An error that is no refusal of the call (a manager bug): logged, and reported as prepare's would be. */
  unexpected(err: unknown): void;
}

export async function answerPrepareCall(host: PrepareCallHost, p: Params<'prepareCall'>): Promise<Result<'prepareCall'>> {
  const parsed = parseClientCall(p.argv, 'prepareCall', ['create', 'run'] as const, (inv, command) => parseCreateCall(inv, command, p.cwd));
  if ('error' in parsed) return failed(parsed.error, parsed.logTarget);
  const { inv, call } = parsed;
  try {
    const prepared = await host.prepare(prepareParams(call, p.callerPid, processStartTime(p.callerPid) ?? ''));
    const writes = prepared.warnings.flatMap((warning) => warningWrites(warning, inv.globals));
    const answer = { exitCode: 0, writes, stdout: launcherLines(call, prepared) };
    // A foreground run whose cleanup is waited for keeps the per-call binary as runc's parent (bin/sysrunc).
    if (p.handOver !== true || (call.foreground && prepared.cleanup === 'sync')) return answer;
    const runc = { argv: preparedRuncArgv(inv, call.command, call.bundle, call.consoleSocket), preparedConfig: path.join(prepared.bundle, 'config.json'), callerBundle: call.bundle };
    return { ...answer, runc };
  } catch (err) {
    // prepare's refusals in its own words; anything else as rpc/server.ts answers prepare's.
    if (err instanceof ServiceError) return failed(err, inv.globals);
    host.unexpected(err);
    return failed(new SysruncError(`prepare: ${err instanceof Error ? err.message : String(err)}`), inv.globals);
  }
}

function failed(err: Error, target: LogTarget): Result<'prepareCall'> {
  return { exitCode: err instanceof SysruncError ? err.exitCode : 1, writes: errorWrites(err, target), stdout: '' };
}
