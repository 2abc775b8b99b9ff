// The manager's answers as the per-call binary sees them, and the errors they become.
import { SysruncError } from '../common/errors.ts';
import type { ErrorCode, MethodName, Result } from '../manager-api/v1.ts';
import { callerFacts, callerRefusal } from './rootless-caller.ts';

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

/** How long a call waits for a manager that is not listening (restarting), unless SYSRUNC_MGR_WAIT_MS says. */
export const DEFAULT_MANAGER_WAIT_MS = 5_000;
export const FIRST_RETRY_MS = 50;
export const MAX_RETRY_MS = 500;
/**
 * Errors that mean "nobody is listening right now", as while the manager restarts: no socket file,
 * a stale one, a full backlog, or a listener that died while the connection was being made.
 */
export const RETRYABLE: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'ECONNRESET']);

/** The bound on waiting for the manager: SYSRUNC_MGR_WAIT_MS (ms, 0 = no wait) or the default. */
export function managerWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['SYSRUNC_MGR_WAIT_MS'];
  if (raw === undefined || raw === '') return DEFAULT_MANAGER_WAIT_MS;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_MANAGER_WAIT_MS;
}

/** ", still after waiting 5.0s" for a connect that gave up waiting; nothing otherwise. */
export function waitedText(code: string, waitMs: number): string {
  return RETRYABLE.has(code) && waitMs > 0 ? `, still after waiting ${(waitMs / 1000).toFixed(1)}s` : '';
}

export function unreachable(socketPath: string, detail: string): SysruncError {
  // A rootless engine's create: starting a manager would not help, so say what would.
  const facts = callerFacts(socketPath);
  const refusal = facts === undefined ? undefined : callerRefusal(socketPath, facts);
  if (refusal !== undefined) return new SysruncError(`${refusal} (${detail})`);
  return new SysruncError(
    `sysrunc-mgr is not reachable at ${socketPath} (${detail}); start it with "systemctl start sysrunc-mgr" or "sysrunc-mgr --socket ${socketPath}"`,
  );
}
