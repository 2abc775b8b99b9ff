// The tenant service's client: the one RPC client (src/rpc/client.ts) with the service's API (v1.ts).
import { RpcClient } from '../rpc/client.ts';
import { TENANTS_API, TenantError, type METHODS, type MethodName, type Params, type Result, type TenantErrorCode } from './v1.ts';

export const DEFAULT_TENANTS_SOCKET = '/run/sysrunc-tenants/tenantd.sock';

/** A run may unpack an image: minutes at most. Delete and exec are long polls the service bounds. */
const CALL_TIMEOUT_MS = 300_000;

export class TenantsClient {
  private constructor(private readonly rpc: RpcClient<typeof METHODS>) {}

  get socketPath(): string {
    return this.rpc.socketPath;
  }

  /** Connects, retrying for up to waitMs while nobody listens (the service restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_TENANTS_SOCKET'] ?? DEFAULT_TENANTS_SOCKET, waitMs = 5_000): Promise<TenantsClient> {
    return new TenantsClient(
      await RpcClient.connect(socketPath, TENANTS_API, {
        waitMs,
        callTimeoutMs: CALL_TIMEOUT_MS,
        errorFor: (code, message) => new TenantError(code as TenantErrorCode, message),
      }),
    );
  }

  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    return this.rpc.call(method, params);
  }

  close(): void {
    this.rpc.close();
  }
}
