// One connection to a JSON-lines service (see method-table.ts for the wire format): the socket,
// the line framing, and the requests waiting for their answers by seq. client.ts decides what an
// answer means; this only carries lines and ends every waiter when the connection ends.
import { createConnection, type Socket } from 'node:net';
import { SysruncError } from '../common/errors.ts';

/** A request waiting for its answer; `reject` also ends it when the connection does. */
export interface PendingRequest {
  reject(err: Error): void;
}

/** The connection ended (the daemon exited, was killed or restarted) with requests unanswered. */
export class ConnectionLostError extends SysruncError {}

/** Errors that mean "nobody is listening right now", as while a daemon restarts. */
export const CONNECT_RETRYABLE: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'ECONNRESET']);
export const FIRST_RETRY_MS = 50;
export const MAX_RETRY_MS = 500;
const CONNECT_TIMEOUT_MS = 5_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class LineConnection<P extends PendingRequest> {
  private seq = 0;
  private buffer = '';
  private readonly pending = new Map<number, P>();
  private closedBy: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    /** "depot daemon at /run/...": the start of every error of this connection. */
    readonly where: string,
    private readonly onAnswer: (json: unknown) => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new ConnectionLostError(`${where} closed the connection`)));
    socket.on('error', (err) => this.failAll(new ConnectionLostError(`${where}: ${err.message}`)));
  }

  /**
   * Connects, trying again with a short back-off for up to waitMs while nobody listens (no socket
   * file, a stale one, a full backlog, a listener dying: a daemon restarting). Nothing has been
   * sent yet, so this is safe for any call. The last error code when it gives up.
   */
  static async connect<P extends PendingRequest>(socketPath: string, where: string, waitMs: number, onAnswer: (json: unknown) => void): Promise<LineConnection<P> | { code: string }> {
    const deadline = Date.now() + waitMs;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const attempt = await new Promise<LineConnection<P> | { code: string }>((resolve) => {
        const socket = createConnection({ path: socketPath });
        const timer = setTimeout(() => {
          socket.destroy();
          resolve({ code: 'timed out' });
        }, CONNECT_TIMEOUT_MS);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          resolve(new LineConnection<P>(socket, where, onAnswer));
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          socket.destroy();
          resolve({ code: err.code ?? err.message });
        });
      });
      if (attempt instanceof LineConnection) return attempt;
      const left = deadline - Date.now();
      if (!CONNECT_RETRYABLE.has(attempt.code) || left <= 0) return attempt;
      await sleep(Math.min(delay, left));
    }
  }

  get closed(): boolean {
    return this.closedBy !== undefined;
  }

  /** Sends the request made for its seq; returns the seq (or rejects the request at once if the connection ended). */
  send(request: P, envelope: (seq: number) => unknown): number | undefined {
    if (this.closedBy !== undefined) {
      request.reject(this.closedBy);
      return undefined;
    }
    const seq = ++this.seq;
    this.pending.set(seq, request);
    this.socket.write(`${JSON.stringify(envelope(seq))}\n`);
    return seq;
  }

  /** The request an answer is for (it stays pending: events may follow). */
  pendingFor(seq: number): P | undefined {
    return this.pending.get(seq);
  }

  /** The request an answer is for, no longer pending. */
  settle(seq: number): P | undefined {
    const request = this.pending.get(seq);
    this.pending.delete(seq);
    return request;
  }

  /** Ends every pending request, and any later one, with err. */
  failAll(err: Error): void {
    this.closedBy ??= err;
    for (const request of this.pending.values()) request.reject(err);
    this.pending.clear();
  }

  close(): void {
    this.closedBy ??= new SysruncError(`${this.where}: the connection was closed by this client`);
    this.socket.end();
    this.socket.unref();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline;
    while ((newline = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        this.failAll(new SysruncError(`${this.where}: an answer is not JSON`));
        this.socket.destroy();
        return;
      }
      this.onAnswer(json);
    }
  }
}
