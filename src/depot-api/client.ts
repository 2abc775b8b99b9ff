// The depot daemon's client, derived from v1.ts: each answer is checked against the method's schema.
import { LineConnection } from '../rpc/line-connection.ts';
import { DEPOT_API_VERSION, DepotError, METHODS, Reply, type AttachEvent, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_DEPOT_SOCKET = '/run/sysrunc-depot/depotd.sock';

interface Waiter {
  readonly method: MethodName;
  resolve(result: unknown): void;
  reject(err: Error): void;
  event?(event: unknown, seq: number): void;
}

const SERVICE = { what: 'depot daemon', daemon: 'sysrunc-depotd' };

export class DepotClient {
  private constructor(private readonly conn: LineConnection<Waiter>) {}

  get socketPath(): string {
    return this.conn.socketPath;
  }

  /** Connects, retrying for up to waitMs while nobody listens (the daemon restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_DEPOT_SOCKET'] ?? DEFAULT_DEPOT_SOCKET, waitMs = 5_000): Promise<DepotClient> {
    // Answers before the first request (a refused connection) wait for the client: it is set below.
    let client: DepotClient | undefined;
    const early: unknown[] = [];
    const conn = await LineConnection.connect<Waiter>(socketPath, SERVICE, waitMs, (json) => (client === undefined ? early.push(json) : client.onAnswer(json)));
    client = new DepotClient(conn);
    for (const json of early) client.onAnswer(json);
    return client;
  }

  call<M extends Exclude<MethodName, 'attach'>>(method: M, params: Params<M>): Promise<Result<M>> {
    return this.send(method, params) as Promise<Result<M>>;
  }

  /** Streams output events to onEvent; resolves with the exit code once the process is done. */
  attach(params: Params<'attach'>, onEvent: (event: AttachEvent) => void): Promise<Result<'attach'>> {
    return this.send('attach', params, (raw, seq) => {
      const event = METHODS.attach.event.safeParse(raw);
      if (event.success) onEvent(event.data);
      // Output that cannot be read is output lost: the attach ends with the error.
      else this.conn.settle(seq)?.reject(this.conn.malformed('attach event', event.error.issues[0]?.message));
    }) as Promise<Result<'attach'>>;
  }

  close(): void {
    this.conn.close();
  }

  private send(method: MethodName, params: unknown, event?: (raw: unknown, seq: number) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.conn.send({ method, resolve, reject, ...(event === undefined ? {} : { event }) }, (seq) => ({ v: DEPOT_API_VERSION, seq, method, params }));
    });
  }

  private onAnswer(json: unknown): void {
    const reply = Reply.safeParse(json);
    if (!reply.success) return this.conn.failUnreadable(reply.error.issues[0]?.message);
    const r = reply.data;
    if ('event' in r) {
      this.conn.pendingFor(r.seq)?.event?.(r.event, r.seq);
      return;
    }
    const waiter = this.conn.settle(r.seq);
    if (waiter === undefined) {
      // seq -1: the daemon refused the connection itself (not root, bad envelope).
      if (r.seq === -1 && 'error' in r) this.conn.failAll(new DepotError(r.error.code, r.error.message));
      return;
    }
    if ('error' in r) {
      waiter.reject(new DepotError(r.error.code, r.error.message));
    } else {
      const result = METHODS[waiter.method].result.safeParse(r.result);
      if (result.success) waiter.resolve(result.data);
      else waiter.reject(this.conn.malformed(waiter.method, result.error.issues[0]?.message));
    }
  }
}
