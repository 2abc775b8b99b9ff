// One request to the manager from the per-call binary. Compiled with Bun, it speaks through Bun's
// native socket API (host/unix-socket-bun.ts), which keeps the binary's start-up and exit at a
// few ms; under Node (the fallback where Bun cannot run) it uses the ManagerClient (the one RPC
// client, which checks every answer against manager-api/v1.ts: loaded only there, as building its
// schemas costs start-up: the compiled binary with the shared client took 79 ms of CPU a call
// against 54 ms without it, medians of 150 interleaved runs each). Both wait, bounded, for a
// manager that is restarting, and end in the same one-line errors.
import { SysruncError } from '../common/errors.ts';
import type { MethodName, Params, Result } from '../manager-api/v1.ts';
import { API_VERSION } from '../manager-api/version.ts';
import { FIRST_RETRY_MS, managerWaitMs, MAX_RETRY_MS, parseReply, RETRYABLE, unreachable, waitedText } from './reply.ts';

const CALL_TIMEOUT_MS = 120_000;
/**
 * Requests a new manager can be asked again after the one that had them died: the methods
 * manager-api/v1.ts marks idempotent that this path sends (a unit test holds the two together;
 * the table itself is not loaded here, see above).
 */
export const RESENDABLE: ReadonlySet<MethodName> = new Set(['prepare', 'release']);
/** The connection ended without an answer: the manager exited (EOF) or was killed (reset). */
const DIED_WITH_REQUEST: ReadonlySet<string> = new Set(['EOF', 'ECONNRESET', 'EPIPE']);

export async function callManager<M extends MethodName>(socketPath: string, method: M, params: Params<M>): Promise<Result<M>> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === 'undefined') return callWithNode(socketPath, method, params);
  const sock = await import('../host/unix-socket-bun.ts');
  const waitMs = managerWaitMs();
  let deadline = Date.now() + waitMs;
  const request = `${JSON.stringify({ v: API_VERSION, seq: 1, method, params })}\n`;
  let line: string;
  let resent = false;
  for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
    try {
      line = await sock.requestLine(socketPath, request, CALL_TIMEOUT_MS);
      break;
    } catch (err) {
      if (!(err instanceof sock.SocketCallError)) throw err;
      if (err.syscall !== 'connect') {
        // The manager died with the request (killed, restarted): sent again to the next one,
        // waiting for it as for any restart, within one wait bound from the first loss. A dying
        // manager's listening socket can still take a connection and then drop it, so more than
        // one resend may be needed. Only requests the manager can take twice.
        if (!RESENDABLE.has(method) || !DIED_WITH_REQUEST.has(err.code) || waitMs === 0) throw new SysruncError(`manager at ${socketPath}: ${method}: ${err.message}`);
        if (!resent) deadline = Date.now() + waitMs;
        resent = true;
        const left = deadline - Date.now();
        if (left <= 0) throw new SysruncError(`manager at ${socketPath}: ${method}: ${err.message}, still after waiting ${(waitMs / 1000).toFixed(1)}s for a new manager`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
        continue;
      }
      const left = deadline - Date.now();
      if (!RETRYABLE.has(err.code) || left <= 0) throw unreachable(socketPath, `connect: ${err.code}${waitedText(err.code, waitMs)}`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    }
  }
  return parseReply(socketPath, method, line);
}

/** The same under Node (the fallback where Bun cannot run): the ManagerClient resends idempotent calls itself. */
async function callWithNode<M extends MethodName>(socketPath: string, method: M, params: Params<M>): Promise<Result<M>> {
  const { ManagerClient } = await import('./client.ts');
  const client = await ManagerClient.connect(socketPath);
  try {
    return await client.call(method, params);
  } finally {
    client.close();
  }
}
