// One request to the manager from the per-call binary. Compiled with Bun, it speaks through a
// blocking libc socket (host/unix-socket-bun.ts), which keeps the binary's start-up and exit at a
// few ms; under Node (the fallback where Bun cannot run) it uses the ManagerClient. Both wait,
// bounded, for a manager that is restarting, and end in the same one-line errors.
import { SysruncError } from '../errors.ts';
import type { MethodName, Params, Result } from '../manager-api/v1.ts';
import { API_VERSION } from '../manager-api/version.ts';
import { ManagerClient } from './client.ts';
import { FIRST_RETRY_MS, managerWaitMs, MAX_RETRY_MS, parseReply, RETRYABLE, unreachable, waitedText } from './reply.ts';

const CALL_TIMEOUT_MS = 120_000;

export async function callManager<M extends MethodName>(socketPath: string, method: M, params: Params<M>): Promise<Result<M>> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === 'undefined') {
    const client = await ManagerClient.connect(socketPath);
    try {
      return await client.call(method, params);
    } finally {
      client.close();
    }
  }
  const sock = await import('../host/unix-socket-bun.ts');
  const waitMs = managerWaitMs();
  const deadline = Date.now() + waitMs;
  let fd: number;
  for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
    try {
      fd = sock.connectUnix(socketPath, CALL_TIMEOUT_MS);
      break;
    } catch (err) {
      const code = err instanceof sock.SocketCallError ? err.code : String(err);
      const left = deadline - Date.now();
      if (!RETRYABLE.has(code) || left <= 0) throw unreachable(socketPath, `connect: ${code}${waitedText(code, waitMs)}`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    }
  }
  let line: string;
  try {
    line = sock.requestLine(fd, `${JSON.stringify({ v: API_VERSION, seq: 1, method, params })}\n`);
  } catch (err) {
    const detail = err instanceof sock.SocketCallError ? err.message : String(err);
    throw new SysruncError(`manager at ${socketPath}: ${method}: ${detail}`);
  } finally {
    sock.closeFd(fd);
  }
  return parseReply(socketPath, method, line);
}
