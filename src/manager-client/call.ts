// One request to the manager from the per-call binary. Compiled with Bun, it speaks through a
// blocking libc socket (host/unix-socket-bun.ts), which keeps the binary's start-up and exit at a
// few ms; under Node (the fallback where Bun cannot run) it uses the ManagerClient. Both wait,
// bounded, for a manager that is restarting, and end in the same one-line errors.
import { SysruncError } from '../errors.ts';
import type { MethodName, Params, Result } from '../manager-api/v1.ts';
import { API_VERSION } from '../manager-api/version.ts';
import { ManagerClient } from './client.ts';
import { parseReply, unreachable } from './reply.ts';

/** How long a call waits for a manager that is not listening (restarting), in ms. */
export function managerWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.SYSRUNC_MGR_WAIT_MS);
  return Number.isFinite(ms) && ms >= 0 ? ms : 5_000;
}

const CALL_TIMEOUT_MS = 120_000;
const RETRY_CODES = new Set(['ENOENT', 'ECONNREFUSED']);

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
  const deadline = Date.now() + managerWaitMs();
  let fd: number;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      fd = sock.connectUnix(socketPath, CALL_TIMEOUT_MS);
      break;
    } catch (err) {
      const code = err instanceof sock.SocketCallError ? err.code : String(err);
      if (!RETRY_CODES.has(code) || Date.now() + delay > deadline) throw unreachable(socketPath, `connect: ${code}`);
      await new Promise((resolve) => setTimeout(resolve, delay));
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
