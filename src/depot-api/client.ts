// The depot daemon's client, derived from v1.ts: each answer is checked against the method's schema.
import { createConnection, type Socket } from 'node:net';
import { DEPOT_API_VERSION, DepotError, METHODS, Reply, type AttachEvent, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_DEPOT_SOCKET = '/run/sysrunc-depot/depotd.sock';

interface Waiter {
  readonly method: MethodName;
  resolve(result: unknown): void;
  reject(err: Error): void;
  event?(event: unknown): void;
}

export class DepotClient {
  private seq = 0;
  private buffer = '';
  private readonly waiting = new Map<number, Waiter>();
  private closedBy: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new Error(`depot daemon at ${socketPath} closed the connection`)));
    socket.on('error', (err) => this.failAll(new Error(`depot daemon at ${socketPath}: ${err.message}`)));
  }

  /** Connects, retrying for up to waitMs while nobody listens (the daemon restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_DEPOT_SOCKET'] ?? DEFAULT_DEPOT_SOCKET, waitMs = 5_000): Promise<DepotClient> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const attempt = await new Promise<DepotClient | string>((resolve) => {
        const socket = createConnection({ path: socketPath });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          resolve(new DepotClient(socket, socketPath));
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          socket.destroy();
          resolve(err.code ?? err.message);
        });
      });
      if (attempt instanceof DepotClient) return attempt;
      if (!['ENOENT', 'ECONNREFUSED', 'EAGAIN'].includes(attempt) || Date.now() >= deadline) {
        throw new Error(`connect to the depot daemon at ${socketPath}: ${attempt} (start it with sysrunc-depotd --socket ${socketPath})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  call<M extends Exclude<MethodName, 'attach'>>(method: M, params: Params<M>): Promise<Result<M>> {
    return this.send(method, params) as Promise<Result<M>>;
  }

  /** Streams output events to onEvent; resolves with the exit code once the process is done. */
  attach(params: Params<'attach'>, onEvent: (event: AttachEvent) => void): Promise<Result<'attach'>> {
    return this.send('attach', params, (raw) => {
      const event = METHODS.attach.event.safeParse(raw);
      if (event.success) onEvent(event.data);
    }) as Promise<Result<'attach'>>;
  }

  close(): void {
    this.socket.end();
  }

  private send(method: MethodName, params: unknown, event?: (raw: unknown) => void): Promise<unknown> {
    if (this.closedBy !== undefined) return Promise.reject(this.closedBy);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { method, resolve, reject, ...(event === undefined ? {} : { event }) });
      this.socket.write(`${JSON.stringify({ v: DEPOT_API_VERSION, seq, method, params })}\n`);
    });
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
        this.failAll(new Error(`depot daemon at ${this.socketPath}: an answer is not JSON`));
        return;
      }
      const reply = Reply.safeParse(json);
      if (!reply.success) continue;
      const waiter = this.waiting.get(reply.data.seq);
      if (waiter === undefined) continue;
      const r = reply.data;
      if ('event' in r) {
        waiter.event?.(r.event);
      } else if ('error' in r) {
        this.waiting.delete(r.seq);
        waiter.reject(new DepotError(r.error.code, r.error.message));
      } else {
        this.waiting.delete(r.seq);
        const result = METHODS[waiter.method].result.safeParse(r.result);
        if (result.success) waiter.resolve(result.data);
        else waiter.reject(new Error(`depot daemon at ${this.socketPath}: ${waiter.method}: malformed answer (${result.error.issues[0]?.message ?? 'invalid'})`));
      }
    }
  }

  private failAll(err: Error): void {
    this.closedBy ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
