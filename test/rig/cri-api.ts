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
  /** Host paths: propagation PRIVATE = 0, HOST_TO_CONTAINER = 1, BIDIRECTIONAL = 2. */
  readonly mounts?: ReadonlyArray<{ readonly container_path: string; readonly host_path: string; readonly readonly?: boolean; readonly propagation?: number }>;
  /** namespace_options.pid: POD = 0 (the sandbox's), CONTAINER = 1 (its own). */
  readonly linux?: {
    readonly security_context?: {
      readonly namespace_options?: { readonly pid?: number };
      readonly capabilities?: { readonly add_capabilities?: readonly string[]; readonly drop_capabilities?: readonly string[] };
      readonly privileged?: boolean;
    };
    readonly resources?: { readonly memory_limit_in_bytes?: number; readonly cpu_quota?: number; readonly cpu_period?: number };
  };
  /** KeyValue.value is bytes in ../shared/cri-api/api.proto. */
  readonly envs?: readonly { readonly key: string; readonly value: Uint8Array }[];
  /** Passed on to the runtime only where the handler's container_annotations allow them. */
  readonly annotations?: Readonly<Record<string, string>>;
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

/** What containerd's verbose PodSandboxStatus tells of the sandbox's process. */
export interface PodSandboxInfo {
  /** The sandbox (pause) process, on the host. */
  readonly pid: number;
  /** The network namespace the sandbox's runtime spec names (CNI's, pinned by containerd). */
  readonly netnsPath: string;
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
  /** StopContainer (SIGTERM, then SIGKILL after timeoutSeconds) and RemoveContainer. */
  stopAndRemoveContainer(id: string, timeoutSeconds?: number): Promise<void>;
  stopPodSandbox(podId: string): Promise<void>;
  removePodSandbox(podId: string): Promise<void>;
  listContainers(podId?: string): Promise<ContainerSummary[]>;
  podSandboxStatus(podId: string): Promise<PodSandboxStatus>;
  podSandboxInfo(podId: string): Promise<PodSandboxInfo>;
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
    async stopAndRemoveContainer(id, timeoutSeconds = 0) {
      await cri.runtime('StopContainer', { container_id: id, timeout: timeoutSeconds });
      await cri.runtime('RemoveContainer', { container_id: id });
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
    async podSandboxInfo(podId) {
      const r = await cri.runtime('PodSandboxStatus', { pod_sandbox_id: podId, verbose: true });
      const raw = (r.info as Record<string, string> | undefined)?.info;
      if (raw === undefined) throw new Error(`PodSandboxStatus of ${podId}: no verbose info`);
      const info = JSON.parse(raw) as { pid?: number; runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } };
      const netnsPath = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
      if (typeof info.pid !== 'number' || netnsPath === undefined) throw new Error(`PodSandboxStatus of ${podId}: no pid or network namespace path in ${raw.slice(0, 200)}`);
      return { pid: info.pid, netnsPath };
    },
  };
}
