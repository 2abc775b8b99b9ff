// The tenant service's client, derived from v1.ts: each answer is checked against the method's schema.
import { LineConnection } from '../rpc/line-connection.ts';
import { METHODS, Reply, TENANTS_API_VERSION, TenantError, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_TENANTS_SOCKET = '/run/sysrunc-tenants/tenantd.sock';

interface Waiter {
  readonly method: MethodName;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

const SERVICE = { what: 'tenant service', daemon: 'sysrunc-tenantd' };

export class TenantsClient {
  private constructor(private readonly conn: LineConnection<Waiter>) {}

  get socketPath(): string {
    return this.conn.socketPath;
  }

  /** Connects, retrying for up to waitMs while nobody listens (the service restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_TENANTS_SOCKET'] ?? DEFAULT_TENANTS_SOCKET, waitMs = 5_000): Promise<TenantsClient> {
    // Answers before the first request (a refused connection) wait for the client: it is set below.
    let client: TenantsClient | undefined;
    const early: unknown[] = [];
    const conn = await LineConnection.connect<Waiter>(socketPath, SERVICE, waitMs, (json) => (client === undefined ? early.push(json) : client.onAnswer(json)));
    client = new TenantsClient(conn);
    for (const json of early) client.onAnswer(json);
    return client;
  }

  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    return new Promise((resolve, reject) => {
      this.conn.send({ method, resolve: resolve as (r: unknown) => void, reject }, (seq) => ({ v: TENANTS_API_VERSION, seq, method, params }));
    });
  }

  close(): void {
    this.conn.close();
  }

  private onAnswer(json: unknown): void {
    const reply = Reply.safeParse(json);
    if (!reply.success) return this.conn.failUnreadable(reply.error.issues[0]?.message);
    const r = reply.data;
    const waiter = this.conn.settle(r.seq);
    if (waiter === undefined) {
      // seq -1: the service refused the connection itself (not root, bad envelope).
      if (r.seq === -1 && 'error' in r) this.conn.failAll(new TenantError(r.error.code, r.error.message));
      return;
    }
    if ('error' in r) {
      waiter.reject(new TenantError(r.error.code, r.error.message));
    } else {
      const result = METHODS[waiter.method].result.safeParse(r.result);
      if (result.success) waiter.resolve(result.data);
      else waiter.reject(this.conn.malformed(waiter.method, result.error.issues[0]?.message));
    }
  }
}
