// The depot daemon's client, derived from v1.ts: each answer is checked against the method's schema.
import { LineConnection } from '../rpc/line-connection.ts';
import { DEPOT_API_VERSION, DepotError, METHODS, Reply, type AttachEvent, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_DEPOT_SOCKET = '/run/sysrunc-depot/depotd.sock';

interface Waiter {
  readonly method: MethodName;
  resolve(result: unknown): void;
  reject(err: Error): void;
  event?(event: unknown): void;
}

const SERVICE = { what: 'depot daemon', daemon: 'sysrunc-depotd' };

export class DepotClient {
  private constructor(private readonly conn: LineConnection<Waiter>) {}

  get socketPath(): string {
    return this.conn.socketPath;
  }

  /** Connects, retrying for up to waitMs while nobody listens (the daemon restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_DEPOT_SOCKET'] ?? DEFAULT_DEPOT_SOCKET, waitMs = 5_000): Promise<DepotClient> {
    // No answer can come before the first request, which needs the client.
    let client: DepotClient | undefined;
    const conn = await LineConnection.connect<Waiter>(socketPath, SERVICE, waitMs, (json) => client?.onAnswer(json));
    client = new DepotClient(conn);
    return client;
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
    this.conn.close();
  }

  private send(method: MethodName, params: unknown, event?: (raw: unknown) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.conn.send({ method, resolve, reject, ...(event === undefined ? {} : { event }) }, (seq) => ({ v: DEPOT_API_VERSION, seq, method, params }));
    });
  }

  private onAnswer(json: unknown): void {
    const reply = Reply.safeParse(json);
    if (!reply.success) return;
    const r = reply.data;
    if ('event' in r) {
      this.conn.pendingFor(r.seq)?.event?.(r.event);
      return;
    }
    const waiter = this.conn.settle(r.seq);
    if (waiter === undefined) return;
    if ('error' in r) {
      waiter.reject(new DepotError(r.error.code, r.error.message));
    } else {
      const result = METHODS[waiter.method].result.safeParse(r.result);
      if (result.success) waiter.resolve(result.data);
      else waiter.reject(this.conn.malformed(waiter.method, result.error.issues[0]?.message));
    }
  }
}
