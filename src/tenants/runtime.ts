// What the service's parts share: the containerd connection, where sysrunc and tini live, and the
// per-container bookkeeping that must not outlive the process (deletes under way).
import path from 'node:path';
import type { Logger } from 'pino';
import type { ContainerdClient } from './containerd-client.ts';

export interface RestartPolicy {
  /** Restarts after unexpected exits before the container is reported failed. */
  readonly maxRestarts: number;
  /** Back-off before restart n (0-based): baseDelayMs * 2^n, at most maxDelayMs. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface TenantRuntime {
  readonly ctrd: ContainerdClient;
  /** The runc-compatible binary the runc v2 shim runs (BinaryName): sysrunc. */
  readonly sysrunc: string;
  /** runc --root the shim passes (a namespace dir under it per tenant). */
  readonly runcRoot: string;
  /** Logs (per container) and exec output (per exec): the only files the service writes. */
  readonly stateDir: string;
  /** The cgroup every tenant's containers go under: <parent>/<ns>/<id>. */
  readonly cgroupParent: string;
  readonly tini: string;
  readonly snapshotter: string;
  readonly netnsDir: string;
  readonly managerSocket: string | undefined;
  readonly restart: RestartPolicy;
  readonly log: Logger;
  /** "<ns>/<id>" of containers being deleted or restarted by this process. */
  readonly busy: Set<string>;
}

export const key = (ns: string, id: string): string => `${ns}/${id}`;

export { containerdId } from './container-ids.ts';

export function logDir(rt: TenantRuntime, ns: string, id: string): string {
  return path.join(rt.stateDir, 'logs', ns, id);
}

export const RUNTIME_NAME = 'io.containerd.runc.v2';
export const SPEC_TYPE = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
export const PROCESS_TYPE = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
