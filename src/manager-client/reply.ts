// The manager's answers as the per-call binary sees them, and the errors they become.
import { SysruncError } from '../errors.ts';
import type { ErrorCode, MethodName, Result } from '../manager-api/v1.ts';

export class ManagerError extends SysruncError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The manager validates every request against manager-api/v1.ts; its answers are checked here for
 * the envelope only: building the zod schemas would cost the per-call binary ~13 ms of start-up, and
 * the manager is this install's own, root-only peer.
 */
export function parseReply<M extends MethodName>(socketPath: string, method: M, line: string): Result<M> {
  let reply: { error?: { code?: unknown; message?: unknown }; result?: unknown };
  try {
    reply = JSON.parse(line) as typeof reply;
  } catch {
    throw new SysruncError(`manager at ${socketPath}: ${method}: invalid JSON response`);
  }
  if (reply.error !== undefined) {
    if (typeof reply.error.code !== 'string' || typeof reply.error.message !== 'string') throw new SysruncError(`manager at ${socketPath}: ${method}: malformed error`);
    throw new ManagerError(reply.error.code as ErrorCode, reply.error.message);
  }
  if (typeof reply.result !== 'object' || reply.result === null) throw new SysruncError(`manager at ${socketPath}: ${method}: malformed response`);
  return reply.result as Result<M>;
}

export function unreachable(socketPath: string, detail: string): SysruncError {
  return new SysruncError(
    `sysrunc-mgr is not reachable at ${socketPath} (${detail}); start it with "systemctl start sysrunc-mgr" or "sysrunc-mgr --socket ${socketPath}"`,
  );
}
