// The shim's only way to the manager: one connection per shim invocation, requests in sequence.
import { createConnection, type Socket } from 'node:net';
import { SysruncError } from '../errors.ts';
import type { MethodName, Params, Result } from '../manager-api/v1.ts';
import { API_VERSION } from '../manager-api/version.ts';
import { ManagerError, parseReply, unreachable } from './reply.ts';

export { ManagerError };

const CONNECT_TIMEOUT_MS = 5_000;
// Host actions (idmapped mounts, later clones and chowns) can take long on a big rootfs.
const CALL_TIMEOUT_MS = 120_000;

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
    socket.on('close', () => this.failAll(new SysruncError(`manager at ${socketPath} closed the connection`)));
    socket.on('error', (err) => this.failAll(new SysruncError(`manager at ${socketPath}: ${err.message}`)));
  }

  static connect(socketPath: string): Promise<ManagerClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(unreachable(socketPath, 'connect: timed out'));
      }, CONNECT_TIMEOUT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ManagerClient(socket, socketPath));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(unreachable(socketPath, `connect: ${err.code ?? err.message}`));
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

