// The shim's only way to the manager: one connection per shim invocation, requests in sequence.
import { createConnection, type Socket } from 'node:net';
import { SysruncError } from '../errors.ts';
import type { MethodName, Params, Result } from '../manager-api/v1.ts';
import { API_VERSION } from '../manager-api/version.ts';
import { FIRST_RETRY_MS, managerWaitMs, ManagerError, MAX_RETRY_MS, parseReply, RETRYABLE, unreachable, waitedText } from './reply.ts';

export { DEFAULT_MANAGER_WAIT_MS, managerWaitMs } from './reply.ts';
export { ManagerError };

const CONNECT_TIMEOUT_MS = 5_000;
// Host actions (idmapped mounts, later clones and chowns) can take long on a big rootfs.
const CALL_TIMEOUT_MS = 120_000;

/** The connection ended (the manager exited or was killed) with requests unanswered. */
export class ConnectionLostError extends SysruncError {}

export class ManagerClient {
  private seq = 0;
  private buffer = '';
  private readonly waiting = new Map<number, { resolve: (line: unknown) => void; reject: (err: Error) => void }>();

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new ConnectionLostError(`manager at ${socketPath} closed the connection`)));
    socket.on('error', (err) => this.failAll(new ConnectionLostError(`manager at ${socketPath}: ${err.message}`)));
  }

  /**
   * Connects to the manager. While nobody listens (socket missing: ENOENT; a stale socket:
   * ECONNREFUSED; backlog full: EAGAIN; a listener dying: ECONNRESET), as during a manager restart, it tries again with a short
   * back-off, for at most SYSRUNC_MGR_WAIT_MS (default 5 s), then fails with a one-line error.
   */
  static async connect(socketPath: string): Promise<ManagerClient> {
    const waitMs = managerWaitMs();
    const deadline = Date.now() + waitMs;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const attempt = await ManagerClient.connectOnce(socketPath);
      if (attempt instanceof ManagerClient) return attempt;
      const left = deadline - Date.now();
      if (!RETRYABLE.has(attempt.code) || left <= 0) {
        throw unreachable(socketPath, `connect: ${attempt.code}${waitedText(attempt.code, waitMs)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    }
  }

  /** One connection attempt: the client, or the error code that stopped it. */
  private static connectOnce(socketPath: string): Promise<ManagerClient | { code: string }> {
    return new Promise((resolve) => {
      const socket = createConnection({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ code: 'timed out' });
      }, CONNECT_TIMEOUT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ManagerClient(socket, socketPath));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ code: err.code ?? err.message });
      });
    });
  }

  async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    const seq = ++this.seq;
    const reply = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new SysruncError(`manager at ${this.socketPath}: ${method}: no answer within ${CALL_TIMEOUT_MS / 1000}s`));
      }, CALL_TIMEOUT_MS);
      this.waiting.set(seq, {
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
      this.socket.write(`${JSON.stringify({ v: API_VERSION, seq, method, params })}\n`);
    });
    return parseReply(this.socketPath, method, JSON.stringify(reply));
  }

  close(): void {
    this.socket.end();
    this.socket.unref();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline;
    while ((newline = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        this.failAll(new SysruncError(`manager at ${this.socketPath}: invalid JSON response`));
        return;
      }
      const seq = (parsed as { seq?: unknown }).seq;
      const waiter = typeof seq === 'number' ? this.waiting.get(seq) : undefined;
      if (waiter !== undefined) {
        this.waiting.delete(seq as number);
        waiter.resolve(parsed);
      }
    }
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}

