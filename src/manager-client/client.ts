// The manager's client for sysrunc-ctl, the tests and the per-call binary under Node: the one RPC
// client (src/rpc/client.ts) with the manager's API (manager-api/v1.ts). The per-call binary
// compiled with Bun has its own smaller path (call.ts).
import { MANAGER_API, type ErrorCode, type METHODS, type MethodName, type Params, type Result } from '../manager-api/v1.ts';
import { ConnectionLostError, RpcClient } from '../rpc/client.ts';
import { managerWaitMs, ManagerError } from './reply.ts';

export { DEFAULT_MANAGER_WAIT_MS, managerWaitMs } from './reply.ts';
export { ConnectionLostError, ManagerError };

// Host actions (idmapped mounts, later clones and chowns) can take long on a big rootfs.
const CALL_TIMEOUT_MS = 120_000;

export class ManagerClient {
  private constructor(private readonly rpc: RpcClient<typeof METHODS>) {}

  get socketPath(): string {
    return this.rpc.socketPath;
  }

  /**
   * Connects to the manager. While nobody listens (socket missing: ENOENT; a stale socket:
   * ECONNREFUSED; backlog full: EAGAIN; a listener dying: ECONNRESET), as during a manager restart,
   * it tries again with a short back-off, for at most SYSRUNC_MGR_WAIT_MS (default 5 s), then fails
   * with a one-line error.
   */
  static async connect(socketPath: string): Promise<ManagerClient> {
    return new ManagerClient(
      await RpcClient.connect(socketPath, MANAGER_API, {
        waitMs: managerWaitMs(),
        callTimeoutMs: CALL_TIMEOUT_MS,
        errorFor: (code, message) => new ManagerError(code as ErrorCode, message),
        startHint: `"systemctl start sysrunc-mgr" or "sysrunc-mgr --socket ${socketPath}"`,
      }),
    );
  }

  /** One request; resent to a restarted manager only if the method is idempotent (manager-api/v1.ts). */
  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    return this.rpc.call(method, params);
  }

  close(): void {
    this.rpc.close();
  }
}
