// A client connection to one of sysrunc's JSON-lines services (the depot daemon, the tenant
// service): one request or answer per line, matched by `seq`. The API-specific clients check the
// answers against their own schemas; this holds the socket, the line framing and the waiters.
import { createConnection, type Socket } from 'node:net';

/** A request waiting for its answer; `reject` also ends it when the connection does. */
export interface PendingRequest {
  reject(err: Error): void;
}

export interface ServiceName {
  /** e.g. "depot daemon", for errors: "<what> at <socket>: ...". */
  readonly what: string;
  /** The command that starts it, for the connect error. */
  readonly daemon: string;
}

export class LineConnection<P extends PendingRequest> {
  private seq = 0;
  private buffer = '';
  private readonly pending = new Map<number, P>();
  private closedBy: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    private readonly name: ServiceName,
    private readonly onAnswer: (json: unknown) => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new Error(`${name.what} at ${socketPath} closed the connection`)));
    socket.on('error', (err) => this.failAll(new Error(`${name.what} at ${socketPath}: ${err.message}`)));
  }

  /** Connects, retrying for up to waitMs while nobody listens (the service restarting). */
  static async connect<P extends PendingRequest>(socketPath: string, name: ServiceName, waitMs: number, onAnswer: (json: unknown) => void): Promise<LineConnection<P>> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const attempt = await new Promise<LineConnection<P> | string>((resolve) => {
        const socket = createConnection({ path: socketPath });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          resolve(new LineConnection<P>(socket, socketPath, name, onAnswer));
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          socket.destroy();
          resolve(err.code ?? err.message);
        });
      });
      if (attempt instanceof LineConnection) return attempt;
      if (!['ENOENT', 'ECONNREFUSED', 'EAGAIN'].includes(attempt) || Date.now() >= deadline) {
        throw new Error(`connect to the ${name.what} at ${socketPath}: ${attempt} (start it with ${name.daemon} --socket ${socketPath})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends the request made for its seq; `request` is told of the answer through `pendingFor`. */
  send(request: P, envelope: (seq: number) => unknown): void {
    if (this.closedBy !== undefined) {
      request.reject(this.closedBy);
      return;
    }
    const seq = ++this.seq;
    this.pending.set(seq, request);
    this.socket.write(`${JSON.stringify(envelope(seq))}\n`);
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

  /**
   * An answer that is no answer (its envelope fails the API's reply schema): nothing can tell which
   * request it was for, so every pending request ends with the error rather than waiting forever.
   */
  failUnreadable(issue: string | undefined): void {
    this.failAll(new Error(`${this.name.what} at ${this.socketPath}: an answer that is not the API's reply (${issue ?? 'invalid'})`));
  }

  /** The error an answer that is not what its schema says becomes. */
  malformed(method: string, issue: string | undefined): Error {
    return new Error(`${this.name.what} at ${this.socketPath}: ${method}: malformed answer (${issue ?? 'invalid'})`);
  }

  close(): void {
    this.socket.end();
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
        this.failAll(new Error(`${this.name.what} at ${this.socketPath}: an answer is not JSON`));
        return;
      }
      this.onAnswer(json);
    }
  }
}
