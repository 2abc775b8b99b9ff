// sysrunc-depotd service definition, version 1: newline-delimited JSON over a unix socket, the
// manager's framing (src/manager-api/v1.ts). One request a line: {"v":1,"seq":N,"method":"...",
// "params":{...}}; answers {"seq":N,"result":{...}} or {"seq":N,"error":{"code","message"}}.
// A streaming method (attach) first sends any number of {"seq":N,"event":{...}} lines, then its
// result. Requests on one connection run concurrently; answers carry their seq.
// The daemon validates every request; the client checks every answer. Adding a method or an
// optional field keeps version 1.
import * as z from 'zod/mini';
import type { ServiceApi } from '../rpc/method-table.ts';

export const DEPOT_API_VERSION = 1 as const;

/** Container and process ids: a directory name in the depot, never `.`, `..` or a path. */
export const Name = z.string().check(
  z.regex(/^[A-Za-z0-9][\w+\-.]*$/),
  z.maxLength(128),
);
const AbsPath = z.string().check(z.startsWith('/'), z.maxLength(4096));

export const DepotErrorCode = z.enum(['not-found', 'conflict', 'invalid-request', 'exited', 'runtime-failed', 'internal']);
export type DepotErrorCode = z.infer<typeof DepotErrorCode>;

export const BindMount = z.object({ source: AbsPath, destination: AbsPath, readOnly: z.optional(z.boolean()) });

export const ProcessSpec = z.object({
  args: z.array(z.string()).check(z.minLength(1)),
  /** KEY=value; PATH defaults to the usual dirs. */
  env: z.optional(z.array(z.string())),
  cwd: z.optional(AbsPath),
  /** Container uid/gid (default 0: the container's root, an unprivileged host id). */
  uid: z.optional(z.int().check(z.nonnegative())),
  gid: z.optional(z.int().check(z.nonnegative())),
  tty: z.optional(z.boolean()),
  /** Initial terminal size (tty only). */
  rows: z.optional(z.int().check(z.positive(), z.lte(65535))),
  cols: z.optional(z.int().check(z.positive(), z.lte(65535))),
});
export type ProcessSpec = z.infer<typeof ProcessSpec>;

export const ProcessInfo = z.object({
  id: Name,
  /** Host pid while it runs (0 when unknown). */
  pid: z.int(),
  args: z.array(z.string()),
  tty: z.boolean(),
  state: z.enum(['running', 'exited', 'lost']),
  /** Set once exited. */
  exitCode: z.optional(z.int()),
});
export type ProcessInfo = z.infer<typeof ProcessInfo>;

export const ContainerInfo = z.object({
  id: Name,
  /** Host pid of the keep-alive init (0 when not running). */
  pid: z.int(),
  status: z.string(),
  bundle: AbsPath,
});
export type ContainerInfo = z.infer<typeof ContainerInfo>;

const ProcessRef = { container: Name, process: Name };

export const METHODS = {
  ping: {
    params: z.object({}),
    result: z.object({ version: z.string(), apiVersion: z.literal(DEPOT_API_VERSION), pid: z.int(), depot: AbsPath }),
    idempotent: true,
  },
  /** A container with the keep-alive init as PID 1, created through sysrunc (user namespace isolated). */
  create: {
    params: z.object({
      id: Name,
      /** Used in place: the depot never writes into it (a mountpoint for the init is made in /dev, a tmpfs). */
      rootfs: AbsPath,
      readonlyRootfs: z.optional(z.boolean()),
      hostname: z.optional(z.string().check(z.maxLength(64))),
      mounts: z.optional(z.array(BindMount)),
      /** Annotations of the config (e.g. io.sysrunc.* settings). */
      annotations: z.optional(z.record(z.string(), z.string())),
      /** CPU limit in cores (0.5 = half a core): a CFS quota, as the tenant service's `cpu`. */
      cpu: z.optional(z.number().check(z.positive(), z.lte(1024))),
      /** Memory limit in bytes, as the tenant service's `memory`. */
      memory: z.optional(z.int().check(z.gte(4 << 20))),
    }),
    result: ContainerInfo,
  },
  /** Kills everything in the container, deletes it, waits for its supervisors, removes its depot dir. */
  destroy: {
    params: z.object({ id: Name }),
    result: z.object({ processes: z.int() }),
  },
  list: {
    params: z.object({}),
    result: z.object({ containers: z.array(ContainerInfo) }),
    idempotent: true,
  },
  /** Starts a process (runc exec under a supervisor that outlives the daemon); returns once it runs. */
  exec: {
    params: z.object({ container: Name, process: z.optional(Name), spec: ProcessSpec }),
    result: z.object({ process: Name, pid: z.int() }),
  },
  ps: {
    params: z.object({ container: Name }),
    result: z.object({ processes: z.array(ProcessInfo) }),
    idempotent: true,
  },
  /** Waits until the process has exited; its exit code (128+signal when a signal killed it). */
  wait: {
    params: z.object(ProcessRef),
    result: z.object({ exitCode: z.int() }),
    idempotent: true,
    longPoll: true,
  },
  /** Removes the record of an exited process (its directory, output included); a running one is a conflict. */
  forget: {
    params: z.object(ProcessRef),
    result: z.object({}),
  },
  signal: {
    params: z.object({ ...ProcessRef, signal: z.int().check(z.positive(), z.lte(64)) }),
    result: z.object({}),
  },
  /** Bytes for the process's stdin (base64). */
  stdin: {
    params: z.object({ ...ProcessRef, data: z.string().check(z.maxLength(1 << 20)) }),
    result: z.object({}),
  },
  /** End of input: the process reads EOF (a tty gets VEOF). A no-op once the process ended, as resize is. */
  closeStdin: {
    params: z.object(ProcessRef),
    result: z.object({}),
    idempotent: true,
  },
  resize: {
    params: z.object({ ...ProcessRef, rows: z.int().check(z.positive(), z.lte(65535)), cols: z.int().check(z.positive(), z.lte(65535)) }),
    result: z.object({}),
  },
  /**
   * Streams the process's output from the given offsets (default: from the start, so a client
   * that reattaches gets what it missed), then its exit code. Each event carries the offset after
   * it, for a later reattach that resumes exactly there.
   */
  attach: {
    params: z.object({ ...ProcessRef, stdoutOffset: z.optional(z.int().check(z.nonnegative())), stderrOffset: z.optional(z.int().check(z.nonnegative())) }),
    event: z.object({ stream: z.enum(['stdout', 'stderr']), data: z.string(), offset: z.int() }),
    result: z.object({ exitCode: z.int() }),
    longPoll: true,
  },
} as const;

export type MethodName = keyof typeof METHODS;
export type Params<M extends MethodName> = z.infer<(typeof METHODS)[M]['params']>;
export type Result<M extends MethodName> = z.infer<(typeof METHODS)[M]['result']>;
export type AttachEvent = z.infer<(typeof METHODS)['attach']['event']>;

export const Request = z.object({ v: z.literal(DEPOT_API_VERSION), seq: z.int(), method: z.string(), params: z.unknown() });

export const Reply = z.union([
  z.object({ seq: z.int(), result: z.unknown() }),
  z.object({ seq: z.int(), event: z.unknown() }),
  z.object({ seq: z.int(), error: z.object({ code: DepotErrorCode, message: z.string() }) }),
]);

/** An error the daemon answers with: its code travels to the client. */
export class DepotError extends Error {
  override readonly name = 'DepotError';
  constructor(
    readonly code: DepotErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The depot daemon's API as src/rpc/ serves and calls it. */
export const DEPOT_API: ServiceApi<typeof METHODS> = { what: 'depot daemon', daemon: 'sysrunc-depotd', version: DEPOT_API_VERSION, methods: METHODS, errorCode: DepotErrorCode };
