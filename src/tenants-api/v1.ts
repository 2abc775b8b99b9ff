// sysrunc-tenantd service definition, version 1: the seed's container module (Run, Inspect, Delete,
// List, ListNS, Exec, Logs) over a unix socket, in the manager's framing: one request a line,
// {"v":1,"seq":N,"method":"...","params":{...}}; answers {"seq":N,"result":{...}} or
// {"seq":N,"error":{"code","message"}}. The daemon validates every request, the client every answer.
// Adding a method or an optional field keeps version 1.
import * as z from 'zod/mini';
import type { ServiceApi } from '../rpc/method-table.ts';

export const TENANTS_API_VERSION = 1 as const;

/**
 * Tenant (containerd namespace) and container names: containerd's identifier rules (letters and
 * digits, single . _ - between them). A container's containerd id is "<ns>.<name>", at most 76.
 */
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
export const Namespace = z.string().check(z.regex(IDENTIFIER), z.maxLength(76));
export const ContainerName = z.string().check(z.regex(IDENTIFIER), z.maxLength(74));
const AbsPath = z.string().check(z.startsWith('/'), z.maxLength(4096));

export const TenantErrorCode = z.enum([
  'unknown-namespace',
  'duplicate-name',
  'missing-rootfs',
  'missing-image',
  'missing-netns',
  'invalid-mount',
  'not-found',
  'invalid-request',
  'timeout',
  'containerd-failed',
  'internal',
]);
export type TenantErrorCode = z.infer<typeof TenantErrorCode>;

export const MountInfo = z.object({
  /** Host path (bind) or the filesystem's source (tmpfs: any name). */
  source: z.string().check(z.minLength(1), z.maxLength(4096)),
  target: AbsPath,
  /** bind, rbind, tmpfs, ... */
  type: z.string().check(z.minLength(1), z.maxLength(64)),
  options: z.optional(z.array(z.string())),
});
export type MountInfo = z.infer<typeof MountInfo>;

/** The seed's Container, plus an image alternative to a rootfs and resource limits. */
export const Container = z.object({
  name: ContainerName,
  /** A root filesystem tree on the host, used in place. Exactly one of rootfs and image. */
  rootfs: z.optional(AbsPath),
  /** An image already in containerd's content store of the tenant, unpacked by the snapshotter. */
  image: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
  /** KEY=VALUE. */
  env: z.optional(z.array(z.string())),
  workingDir: z.optional(AbsPath),
  /** A named network namespace (/var/run/netns/<namespace>) that must exist; none: a private one. */
  network: z.optional(z.object({ namespace: z.string().check(z.regex(/^[A-Za-z0-9][\w.-]*$/), z.maxLength(64)) })),
  mounts: z.optional(z.array(MountInfo)),
  /** The process to start (argv). */
  entrypoint: z.array(z.string()).check(z.minLength(1)),
  /** A tiny init (tini) as PID 1, reaping and forwarding signals to the entrypoint. */
  interactive: z.optional(z.boolean()),
  /** CPU limit in cores (0.5 = half a core). */
  cpu: z.optional(z.number().check(z.positive(), z.lte(1024))),
  /** Memory limit in bytes. */
  memory: z.optional(z.int().check(z.gte(4 << 20))),
  /** Seconds between SIGTERM and SIGKILL on Delete (default 10). */
  shutdownTimeout: z.optional(z.number().check(z.nonnegative(), z.lte(3600))),
});
export type Container = z.infer<typeof Container>;

export const ContainerState = z.object({
  id: ContainerName,
  /** containerd's task status: running, stopped, created, paused, unknown; "none" without a task. */
  status: z.string(),
  /** Host pid of the task's init (0 without one). */
  pid: z.int(),
  /** Restarts after unexpected exits, and why the service gave up (set once it did). */
  restarts: z.int(),
  failed: z.optional(z.string()),
});
export type ContainerState = z.infer<typeof ContainerState>;

const Ref = { ns: Namespace, id: ContainerName };

export const METHODS = {
  ping: {
    params: z.object({}),
    result: z.object({ version: z.string(), apiVersion: z.literal(TENANTS_API_VERSION), pid: z.int(), containerd: AbsPath }),
    idempotent: true,
  },
  /** Creates a tenant (containerd namespace): Run refuses namespaces that do not exist. */
  createNS: { params: z.object({ ns: Namespace }), result: z.object({}) },
  listNS: { params: z.object({}), result: z.object({ namespaces: z.array(z.string()) }), idempotent: true },
  /** Creates and starts the container; its id is its name. */
  run: { params: z.object({ ns: Namespace, container: Container }), result: z.object({ id: ContainerName }) },
  /** What Run was given, read back from containerd (spec and labels), and the task's state. */
  inspect: { params: z.object(Ref), result: z.object({ container: Container, state: ContainerState }), idempotent: true },
  /** SIGTERM, the shutdown timeout, SIGKILL; then task, container, snapshot and logs go. */
  delete: { params: z.object(Ref), result: z.object({}), longPoll: true },
  list: { params: z.object({ ns: Namespace }), result: z.object({ containers: z.array(ContainerState) }), idempotent: true },
  /** Runs args in the container and returns its output once it exits (killed after timeout seconds). */
  exec: {
    params: z.object({ ...Ref, args: z.array(z.string()).check(z.minLength(1)), timeout: z.optional(z.number().check(z.positive(), z.lte(3600))) }),
    result: z.object({ exitCode: z.int(), stdout: z.string(), stderr: z.string() }),
    longPoll: true,
  },
  /** The last `tail` lines (default all) of the entrypoint's output: stdout and stderr interleaved, in stdout. */
  logs: {
    params: z.object({ ...Ref, tail: z.optional(z.int().check(z.positive())) }),
    result: z.object({ stdout: z.string(), stderr: z.string() }),
    idempotent: true,
  },
} as const;

export type MethodName = keyof typeof METHODS;
export type Params<M extends MethodName> = z.infer<(typeof METHODS)[M]['params']>;
export type Result<M extends MethodName> = z.infer<(typeof METHODS)[M]['result']>;

export const Request = z.object({ v: z.literal(TENANTS_API_VERSION), seq: z.int(), method: z.string(), params: z.unknown() });

export const Reply = z.union([
  z.object({ seq: z.int(), result: z.unknown() }),
  z.object({ seq: z.int(), error: z.object({ code: TenantErrorCode, message: z.string() }) }),
]);

/** An error the daemon answers with: its code travels to the client. */
export class TenantError extends Error {
  override readonly name = 'TenantError';
  constructor(
    readonly code: TenantErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The tenant service's API as src/rpc/ serves and calls it. */
export const TENANTS_API: ServiceApi<typeof METHODS> = { what: 'tenant service', daemon: 'sysrunc-tenantd', version: TENANTS_API_VERSION, methods: METHODS, errorCode: TenantErrorCode };
