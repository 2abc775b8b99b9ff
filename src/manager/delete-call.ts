// The manager's side of the synchronous delete's C client (dist/sysrunc-delete-call,
// src/runtime-call/native/delete-call.c): bin/sysrunc has run runc's delete and sends its argv and
// runc's exit status; this does what the per-call binary's delete does after runc
// (runtime-call/commands/delete.ts), with its code for argv (src/oci): release the container only
// once runc no longer has it, and report a failed release as a warning. Whatever goes wrong is
// answered, not thrown (the client has no grammar to salvage --log and --log-format from), and the
// exit status is always runc's: its delete stands.
import path from 'node:path';
import { oneLine } from '../common/errors.ts';
import { METHODS, type Params, type Result } from '../manager-api/v1.ts';
import { parseDeleteArgs } from '../oci/command-args.ts';
import { runcKnowsContainer } from '../oci/runtime-state.ts';
import { errorWrites, warningWrites } from '../runtime-call/report-error.ts';
import { DEFAULT_RUNC_ROOT } from '../runtime-call/runc-root.ts';
import { firstIssue } from '../rpc/method-table.ts';
import { ServiceError } from './service-error.ts';
import { parseClientCall, type ClientCall } from './client-call-argv.ts';

export interface DeleteCallHost {
  release(p: Params<'release'>): Promise<Result<'release'>>;
  /** An error that is no refusal of the release (a manager bug): logged, and reported as release's would be. */
  unexpected(err: unknown): void;
}

// Each request's params are parsed once, though waitFirst, answerUnqueued and run each need them.
const parsedTargets = new WeakMap<Params<'deleteCall'>, ClientCall<Params<'release'>>>();

/** The container the call deletes and the runc root it is in, or the error that makes the call bad. */
function deleteTarget(p: Params<'deleteCall'>): ClientCall<Params<'release'>> {
  let target = parsedTargets.get(p);
  if (target === undefined) {
    target = parseDeleteTarget(p);
    parsedTargets.set(p, target);
  }
  return target;
}

function parseDeleteTarget(p: Params<'deleteCall'>): ClientCall<Params<'release'>> {
  return parseClientCall(p.argv, 'deleteCall', ['delete'] as const, (inv) => ({
    id: parseDeleteArgs(inv.commandArgs).id,
    // As the per-call binary resolves --root: against the caller's working directory.
    runtimeRoot: path.resolve(p.cwd, inv.globals.root ?? DEFAULT_RUNC_ROOT),
  }));
}

/** The container a deleteCall releases, if its argv names one: a release of it under way is waited for first. */
export function deleteCallContainerId(p: Params<'deleteCall'>): string | undefined {
  const target = deleteTarget(p);
  return 'call' in target ? target.call.id : undefined;
}

/**
 * The answer when the container's release has done the engine's part already (the run dir's part
 * still to come): runc's status, nothing written. Undefined: the call takes its turn in the queue.
 */
export function answerDeleteCallUnqueued(engineReleased: (id: string, runtimeRoot: string) => boolean, p: Params<'deleteCall'>): Result<'deleteCall'> | undefined {
  const target = deleteTarget(p);
  if ('error' in target || !engineReleased(target.call.id, target.call.runtimeRoot)) return undefined;
  return { exitCode: p.runcStatus, writes: [] };
}

export async function answerDeleteCall(host: DeleteCallHost, p: Params<'deleteCall'>): Promise<Result<'deleteCall'>> {
  const target = deleteTarget(p);
  if ('error' in target) return { exitCode: p.runcStatus, writes: errorWrites(target.error, target.logTarget) };
  const { inv, call: release } = target;
  // Undo only once runc no longer has the container: a refused delete (still running, no --force)
  // must leave everything in place.
  if (p.runcStatus !== 0 && runcKnowsContainer(release.runtimeRoot, release.id)) return { exitCode: p.runcStatus, writes: [] };
  const refused = await releaseRefusal(host, release);
  // runc's delete stands; the manager releases the leftovers when it sees the container gone.
  const writes = refused === undefined ? [] : warningWrites(`delete ${release.id}: ${refused}`, inv.globals);
  return { exitCode: p.runcStatus, writes };
}

/** Why the release failed, in the words the per-call binary hears from the manager; undefined: released (or nothing to). */
async function releaseRefusal(host: DeleteCallHost, release: Params<'release'>): Promise<string | undefined> {
  // The checks the socket makes of a release request (an id the API refuses never reaches it).
  const checked = METHODS.release.params.safeParse(release);
  if (!checked.success) return `release: ${firstIssue(checked.error)}`;
  try {
    await host.release(checked.data);
    return undefined;
  } catch (err) {
    if (err instanceof ServiceError) return oneLine(err);
    host.unexpected(err);
    return `release: ${oneLine(err)}`;
  }
}
