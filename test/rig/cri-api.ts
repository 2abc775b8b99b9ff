// Typed helpers over the CRI RuntimeService calls the tests use (field names as in api.proto,
// loaded with keepCase; enums as numbers). Only the fields the tests read or set are typed.
import type { CriClient } from './cri.ts';

export interface PodSandboxConfig {
  readonly metadata: { readonly name: string; readonly uid: string; readonly namespace: string; readonly attempt: number };
  readonly log_directory?: string;
  readonly linux?: { readonly security_context?: { readonly namespace_options?: { readonly network?: number; readonly pid?: number; readonly ipc?: number } } };
}

export interface ContainerConfig {
  readonly metadata: { readonly name: string; readonly attempt: number };
  readonly image: { readonly image: string };
  readonly command?: readonly string[];
  readonly log_path?: string;
  /** namespace_options.pid: POD = 0 (the sandbox's), CONTAINER = 1 (its own). */
  readonly linux?: {
    readonly security_context?: { readonly namespace_options?: { readonly pid?: number } };
    readonly resources?: { readonly memory_limit_in_bytes?: number; readonly cpu_quota?: number; readonly cpu_period?: number };
  };
}

export interface ExecSyncResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** PodSandboxState: SANDBOX_READY = 0, SANDBOX_NOTREADY = 1. */
export interface PodSandboxStatus {
  readonly id: string;
  readonly state: number;
  /** The pod's IP as CNI reported it ('' with none). */
  readonly ip: string;
}

export interface ContainerSummary {
  readonly id: string;
  readonly podSandboxId: string;
  readonly state: number;
}

const text = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString() : '');

export interface CriRuntime {
  runPodSandbox(config: PodSandboxConfig, handler: string): Promise<string>;
  createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  execSync(id: string, cmd: readonly string[], timeoutSeconds?: number): Promise<ExecSyncResult>;
  stopPodSandbox(podId: string): Promise<void>;
  removePodSandbox(podId: string): Promise<void>;
  listContainers(podId?: string): Promise<ContainerSummary[]>;
  podSandboxStatus(podId: string): Promise<PodSandboxStatus>;
}

export function criRuntime(cri: CriClient): CriRuntime {
  return {
    async runPodSandbox(config, handler) {
      return String((await cri.runtime('RunPodSandbox', { config, runtime_handler: handler })).pod_sandbox_id);
    },
    async createContainer(podId, config, sandboxConfig) {
      return String((await cri.runtime('CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig })).container_id);
    },
    async startContainer(id) {
      await cri.runtime('StartContainer', { container_id: id });
    },
    async execSync(id, cmd, timeoutSeconds = 20) {
      const r = await cri.runtime('ExecSync', { container_id: id, cmd, timeout: timeoutSeconds });
      return { stdout: text(r.stdout), stderr: text(r.stderr), exitCode: Number(r.exit_code) };
    },
    async stopPodSandbox(podId) {
      await cri.runtime('StopPodSandbox', { pod_sandbox_id: podId });
    },
    async removePodSandbox(podId) {
      await cri.runtime('RemovePodSandbox', { pod_sandbox_id: podId });
    },
    async listContainers(podId) {
      const r = await cri.runtime('ListContainers', { filter: podId === undefined ? {} : { pod_sandbox_id: podId } });
      const list = Array.isArray(r.containers) ? (r.containers as Array<Record<string, unknown>>) : [];
      return list.map((c) => ({ id: String(c.id), podSandboxId: String(c.pod_sandbox_id), state: Number(c.state) }));
    },
    async podSandboxStatus(podId) {
      const r = await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId });
      const s = (r.status ?? {}) as Record<string, unknown>;
      const network = (s.network ?? {}) as Record<string, unknown>;
      return { id: String(s.id), state: Number(s.state), ip: typeof network.ip === 'string' ? network.ip : '' };
    },
  };
}
