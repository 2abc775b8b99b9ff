// The depot daemon's client: the one RPC client (src/rpc/client.ts) with the depot's API (v1.ts).
import { RpcClient } from '../rpc/client.ts';
import { DEPOT_API, DepotError, type AttachEvent, type DepotErrorCode, type METHODS, type MethodName, type Params, type Result } from './v1.ts';

export const DEFAULT_DEPOT_SOCKET = '/run/sysrunc-depot/depotd.sock';

/** A create runs sysrunc run -d, a destroy waits for the supervisors: minutes at most. */
const CALL_TIMEOUT_MS = 300_000;

export class DepotClient {
  private constructor(private readonly rpc: RpcClient<typeof METHODS>) {}

  get socketPath(): string {
    return this.rpc.socketPath;
  }

  /** Connects, retrying for up to waitMs while nobody listens (the daemon restarting). */
  static async connect(socketPath: string = process.env['SYSRUNC_DEPOT_SOCKET'] ?? DEFAULT_DEPOT_SOCKET, waitMs = 5_000): Promise<DepotClient> {
    return new DepotClient(
      await RpcClient.connect(socketPath, DEPOT_API, {
        waitMs,
        callTimeoutMs: CALL_TIMEOUT_MS,
        errorFor: (code, message) => new DepotError(code as DepotErrorCode, message),
      }),
    );
  }

  call<M extends Exclude<MethodName, 'attach'>>(method: M, params: Params<M>): Promise<Result<M>> {
    return this.rpc.call(method, params);
  }

  /** Streams output events to onEvent; resolves with the exit code once the process is done. */
  attach(params: Params<'attach'>, onEvent: (event: AttachEvent) => void): Promise<Result<'attach'>> {
    return this.rpc.call('attach', params, { onEvent });
  }

  close(): void {
    this.rpc.close();
  }
}
