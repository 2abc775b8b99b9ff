// The one client of sysrunc's JSON-lines services, typed by the API's method table: each answer
// is checked against the method's reply schema (an answer that fails it is an error naming the
// method, never dropped), each call has a timeout unless its method is a long poll, and a call
// whose connection died unanswered is sent again to the next daemon only if its method is
// idempotent (the table says so; a call may choose otherwise).
import { SysruncError } from '../common/errors.ts';
import { ConnectionLostError, FIRST_RETRY_MS, LineConnection, MAX_RETRY_MS, sleep, type PendingRequest } from './line-connection.ts';
import { firstIssue, replyEnvelope, type EventOf, type MethodOf, type MethodTable, type ParamsOf, type ResultOf, type ServiceApi } from './method-table.ts';

export { ConnectionLostError };

export interface ClientOptions {
  /** How long connecting (and resending after a lost connection) waits for a daemon that is not listening. */
  readonly waitMs: number;
  /** The timeout of a call whose method is not a long poll, in ms; 0: none. */
  readonly callTimeoutMs: number;
  /** The error an error answer becomes (the API's own error class). */
  errorFor(code: string, message: string): Error;
  /** How to start the daemon, for the connect error; default `"<daemon> --socket <path>"`. */
  readonly startHint?: string;
}

export interface CallOptions<E> {
  /** Overrides the default timeout (0: none). */
  readonly timeoutMs?: number;
  /** Resend after a lost connection; default: whether the method is idempotent. */
  readonly retry?: boolean;
  /** A streaming method's events. */
  onEvent?(event: E): void;
}

interface Waiter extends PendingRequest {
  readonly method: string;
  resolve(result: unknown): void;
  event?(raw: unknown, seq: number): void;
}

export class RpcClient<T extends MethodTable> {
  private conn: LineConnection<Waiter>;
  private readonly reply;
  private closed = false;

  private constructor(
    readonly socketPath: string,
    private readonly api: ServiceApi<T>,
    private readonly o: ClientOptions,
    conn: LineConnection<Waiter>,
  ) {
    this.conn = conn;
    this.reply = replyEnvelope(api.errorCode);
  }

  static async connect<T extends MethodTable>(socketPath: string, api: ServiceApi<T>, o: ClientOptions): Promise<RpcClient<T>> {
    // Answers before the client exists (a refusal sent at once) wait for it in `early`.
    let client: RpcClient<T> | undefined;
    const early: unknown[] = [];
    const conn = await RpcClient.open(socketPath, api, o, (json) => (client === undefined ? early.push(json) : client.onAnswer(json)));
    client = new RpcClient(socketPath, api, o, conn);
    for (const json of early) client.onAnswer(json);
    return client;
  }

  private static async open<T extends MethodTable>(socketPath: string, api: ServiceApi<T>, o: ClientOptions, onAnswer: (json: unknown) => void): Promise<LineConnection<Waiter>> {
    const conn = await LineConnection.connect<Waiter>(socketPath, `${api.what} at ${socketPath}`, o.waitMs, onAnswer);
    if (conn instanceof LineConnection) return conn;
    const waited = conn.code !== 'timed out' && o.waitMs > 0 ? `, still after waiting ${(o.waitMs / 1000).toFixed(1)}s` : '';
    throw new SysruncError(`${api.daemon} is not reachable at ${socketPath} (connect: ${conn.code}${waited}); start it with ${o.startHint ?? `"${api.daemon} --socket ${socketPath}"`}`);
  }

  async call<M extends MethodOf<T>>(method: M, params: ParamsOf<T, M>, options: CallOptions<EventOf<T, M>> = {}): Promise<ResultOf<T, M>> {
    const spec = this.api.methods[method]!;
    const retry = options.retry ?? spec.idempotent === true;
    const timeoutMs = options.timeoutMs ?? (spec.longPoll === true ? 0 : this.o.callTimeoutMs);
    let deadline: number | undefined;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      try {
        return (await this.callOnce(method, params, timeoutMs, options.onEvent)) as ResultOf<T, M>;
      } catch (err) {
        if (!(err instanceof ConnectionLostError) || !retry || this.closed || this.o.waitMs === 0) throw err;
        // The daemon died with the request (killed, restarting): sent again to the next one, within
        // one wait bound from the first loss. A dying daemon's socket can still take a connection
        // and drop it, so more than one resend may be needed.
        deadline ??= Date.now() + this.o.waitMs;
        const left = deadline - Date.now();
        if (left <= 0) throw new ConnectionLostError(`${err.message} during ${method}, still after waiting ${(this.o.waitMs / 1000).toFixed(1)}s for a new ${this.api.daemon}`);
        await sleep(Math.min(delay, left));
        if (this.conn.closed) this.conn = await RpcClient.open(this.socketPath, this.api, { ...this.o, waitMs: Math.max(deadline - Date.now(), 0) }, (json) => this.onAnswer(json));
      }
    }
  }

  close(): void {
    this.closed = true;
    this.conn.close();
  }

  private callOnce(method: string, params: unknown, timeoutMs: number, onEvent: ((event: never) => void) | undefined): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = <A>(fn: (a: A) => void) => (a: A): void => {
        clearTimeout(timer);
        fn(a);
      };
      const waiter: Waiter = { method, resolve: done(resolve), reject: done(reject) };
      const conn = this.conn;
      const eventSchema = this.api.methods[method]?.event;
      if (onEvent !== undefined && eventSchema !== undefined) {
        waiter.event = (raw, seq) => {
          const event = eventSchema.safeParse(raw);
          if (event.success) onEvent(event.data as never);
          // An event that cannot be read is output lost: the call ends with the error.
          else conn.settle(seq)?.reject(this.malformed(`${method} event`, firstIssue(event.error)));
        };
      }
      const seq = conn.send(waiter, (s) => ({ v: this.api.version, seq: s, method, params }));
      if (seq === undefined || timeoutMs <= 0) return;
      timer = setTimeout(() => {
        // A late answer to it finds no waiter and is let go: the caller has its error already.
        conn.settle(seq);
        reject(new SysruncError(`${this.where()}: ${method}: no answer within ${timeoutMs / 1000}s`));
      }, timeoutMs);
    });
  }

  private where(): string {
    return `${this.api.what} at ${this.socketPath}`;
  }

  private malformed(what: string, issue: string): Error {
    return new SysruncError(`${this.where()}: ${what}: malformed answer (${issue})`);
  }

  private onAnswer(json: unknown): void {
    const reply = this.reply.safeParse(json);
    if (!reply.success) {
      // Nothing can tell which request it was for: every pending one ends with the error.
      this.conn.failAll(new SysruncError(`${this.where()}: an answer that is not the API's reply (${firstIssue(reply.error)})`));
      return;
    }
    const r = reply.data;
    if ('event' in r) {
      this.conn.pendingFor(r.seq)?.event?.(r.event, r.seq);
      return;
    }
    const waiter = this.conn.settle(r.seq);
    if (waiter === undefined) {
      // seq -1: the daemon answered no request of ours (it refused the connection, or could not
      // read a request): every call on this connection ends with its error, now and later.
      if (r.seq === -1) this.conn.failAll('error' in r ? this.o.errorFor(r.error.code, r.error.message) : new SysruncError(`${this.where()}: an answer with seq -1 that is no error`));
      return;
    }
    if ('error' in r) {
      waiter.reject(this.o.errorFor(r.error.code, r.error.message));
      return;
    }
    const result = this.api.methods[waiter.method]!.result.safeParse(r.result);
    if (result.success) waiter.resolve(result.data);
    else waiter.reject(this.malformed(waiter.method, firstIssue(result.error)));
  }
}
