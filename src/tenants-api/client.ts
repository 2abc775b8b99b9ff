// The tenant service's client, derived from v1.ts: each answer is checked against the method's schema.
import { createConnection, type Socket } from 'node:net';
import { METHODS, Reply, TENANTS_API_VERSION, TenantError, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_TENANTS_SOCKET = '/run/sysrunc-tenants/tenantd.sock';

interface Waiter {
  readonly method: MethodName;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export class TenantsClient {
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
    socket.on('close', () => this.failAll(new Error(`tenant service at ${socketPath} closed the connection`)));
    socket.on('error', (err) => this.failAll(new Error(`tenant service at ${socketPath}: ${err.message}`)));
  }

  /** Connects, retrying for up to waitMs while nobody listens (the service restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_TENANTS_SOCKET'] ?? DEFAULT_TENANTS_SOCKET, waitMs = 5_000): Promise<TenantsClient> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const attempt = await new Promise<TenantsClient | string>((resolve) => {
        const socket = createConnection({ path: socketPath });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          resolve(new TenantsClient(socket, socketPath));
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          socket.destroy();
          resolve(err.code ?? err.message);
        });
      });
      if (attempt instanceof TenantsClient) return attempt;
      if (!['ENOENT', 'ECONNREFUSED', 'EAGAIN'].includes(attempt) || Date.now() >= deadline) {
        throw new Error(`connect to the tenant service at ${socketPath}: ${attempt} (start it with sysrunc-tenantd --socket ${socketPath})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    if (this.closedBy !== undefined) return Promise.reject(this.closedBy);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { method, resolve: resolve as (r: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ v: TENANTS_API_VERSION, seq, method, params })}\n`);
    });
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
        this.failAll(new Error(`tenant service at ${this.socketPath}: an answer is not JSON`));
        return;
      }
      const reply = Reply.safeParse(json);
      if (!reply.success) continue;
      const r = reply.data;
      const waiter = this.waiting.get(r.seq);
      if (waiter === undefined) {
        // seq -1: the service refused the connection itself (not root, bad envelope).
        if (r.seq === -1 && 'error' in r) this.failAll(new TenantError(r.error.code, r.error.message));
        continue;
      }
      this.waiting.delete(r.seq);
      if ('error' in r) {
        waiter.reject(new TenantError(r.error.code, r.error.message));
      } else {
        const result = METHODS[waiter.method].result.safeParse(r.result);
        if (result.success) waiter.resolve(result.data);
        else waiter.reject(new Error(`tenant service at ${this.socketPath}: ${waiter.method}: malformed answer (${result.error.issues[0]?.message ?? 'invalid'})`));
      }
    }
  }

  private failAll(err: Error): void {
    this.closedBy ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
