// sysrunc-mgr service definition, version 1: newline-delimited JSON over a unix socket.
// One request per line: {"v":1,"seq":N,"method":"...","params":{...}}; one response line per
// request: {"seq":N,"result":{...}} or {"seq":N,"error":{"code":"...","message":"..."}}.
// Both sides validate every message against these schemas; adding a method or an optional field
// keeps version 1, anything else is version 2.
// zod/mini: the shim loads this on every create, and full zod costs ~30 ms of startup.
import { CONTAINER_ID, MAX_CONTAINER_ID_LENGTH } from '../oci/container-id.ts';
import * as z from 'zod/mini';
import type { ServiceApi } from '../rpc/method-table.ts';

import { API_VERSION } from './version.ts';
import { DELETE_CALL } from './delete-call-method.ts';

export { API_VERSION };

const ContainerId = z.string().check(z.regex(CONTAINER_ID), z.maxLength(MAX_CONTAINER_ID_LENGTH));
const AbsPath = z.string().check(z.startsWith('/'), z.maxLength(4096));

export const IdMapping = z.object({
  containerID: z.int().check(z.nonnegative()),
  hostID: z.int().check(z.nonnegative()),
  size: z.int().check(z.positive()),
});
export type IdMapping = z.infer<typeof IdMapping>;

/** What the shim asks the manager to do on the host; each is recorded, then done, then undoable. */
/**
 * The engine's own overlay of the same upper dir, at its rootfs path: unmounted just before
 * sysrunc's overlay is made and replaced there by sysrunc's, so that exactly one overlay writes to
 * the upper dir (issue 25; see manager/ownership/engine-overlay.ts). Checked against mountinfo.
 * At delete it is mounted there again as it was (layers topmost first, resolved; options as in
 * overlay-mount), unless the engine has unmounted its path already.
 */
const EngineOverlayRef = z.object({
  mountpoint: AbsPath,
  lowerdirs: z.array(AbsPath).check(z.minLength(1)),
  upperdir: AbsPath,
  workdir: AbsPath,
  options: z.record(z.string(), z.string()),
});

export const HostAction = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('idmapped-mount'),
    /** Host path, already resolved by the shim; opened without following symlinks. */
    source: AbsPath,
    /** Created by the manager (empty dir or file), inside the container's run dir only. */
    target: AbsPath,
    recursive: z.boolean(),
    /** Made read-only on the host's side, so the container cannot remount it read-write. */
    readOnly: z.optional(z.boolean()),
    /**
     * Overlay writes its work files with the mounter's (host root's) credentials, which an idmapped
     * mount can only store if host root has an id in the mapping: it gets one spare id above the
     * container's range. Used for an overlay's upper/work layer only.
     */
    mounterWritable: z.optional(z.boolean()),
  }),
  z.object({
    /**
     * Ownership without idmapped mounts, for an overlay rootfs: the manager mounts a clone of the
     * lower layers (metacopy=on, under its own data root) and chowns it by the container's offset,
     * which copies up metadata only; it chowns the container's own upper dir in place; then mounts
     * a new overlay at target with the clone as its lower and the original upper and work dirs.
     * Undone at every stop: the upper dir's chown is reverted (docker commit and docker cp see
     * image ownership); the clone is kept until the container is removed.
     */
    kind: z.literal('rootfs-clone'),
    /** Created by the manager, inside the container's run dir only. */
    target: AbsPath,
    /** The original overlay's layers, topmost first, symlinks resolved. */
    lowerdirs: z.array(AbsPath).check(z.minLength(1)),
    upperdir: AbsPath,
    workdir: AbsPath,
    options: z.record(z.string(), z.string()),
    /**
     * Paths in the rootfs (store volumes in copy mode) whose directories in the upper dir keep
     * their ownership: their synced-out copies stay owned by host root and unchanged, so a later
     * sync-out can skip what did not change.
     */
    keepOwnership: z.optional(z.array(AbsPath)),
    replaces: z.optional(EngineOverlayRef),
  }),
  z.object({
    /**
     * Ownership without idmapped mounts, in place: every entry of the tree at path (or the file)
     * owned by an id in the container's range [0, size) is shifted to its host id; undone by the
     * reverse shift. Never follows a symlink, never crosses into another mount. A path already
     * shifted for another live container is left alone (with a warning), never shifted twice.
     */
    kind: z.literal('chown-tree'),
    path: AbsPath,
  }),
  z.object({
    /**
     * The container's own cgroup directory in each hierarchy, made before runc (which then finds
     * it) and handed to the container's root with the files that manage children, never limits.
     * Undone by removing the directories runc has not removed already.
     */
    kind: z.literal('cgroup-delegate'),
    /** Each below a cgroup or cgroup2 mount. */
    dirs: z.array(AbsPath).check(z.minLength(1)),
  }),
  z.object({
    /** A plain bind mount into the run dir (a chowned directory rootfs: runc must reach it as container root). */
    kind: z.literal('bind-mount'),
    source: AbsPath,
    /** Created by the manager (empty dir or file), inside the container's run dir only. */
    target: AbsPath,
    recursive: z.boolean(),
    /** Made read-only on the host's side, so the container cannot remount it read-write. */
    readOnly: z.optional(z.boolean()),
  }),
  z.object({
    /**
     * Mount points made in a rootfs the container's root does not own (a pod sandbox's, left as
     * the engine made it: spec-transform/pod-sandbox.ts), where runc's init could not make them:
     * a directory each, or an empty file for a bind whose source is not a directory. Nothing to
     * undo: like runc's own, they stay in the container's layer, which the engine removes.
     */
    kind: z.literal('mount-points'),
    root: AbsPath,
    points: z.array(z.object({ destination: AbsPath, bindSource: z.optional(AbsPath) })).check(z.minLength(1)),
  }),
  z.object({
    kind: z.literal('overlay-mount'),
    /** Created by the manager, inside the container's run dir only. */
    target: AbsPath,
    /** Topmost first; each already an idmapped layer inside the run dir. */
    lowerdirs: z.array(AbsPath).check(z.minLength(1)),
    upperdir: z.optional(AbsPath),
    workdir: z.optional(AbsPath),
    /** Extra overlay options as key/value (e.g. redirect_dir=on); an empty value is a flag (volatile). */
    options: z.record(z.string(), z.string()),
    replaces: z.optional(EngineOverlayRef),
  }),
]);
export type HostAction = z.infer<typeof HostAction>;

export const VolumeMount = z.object({
  destination: AbsPath,
  source: AbsPath,
  type: z.literal('bind'),
  options: z.array(z.string()),
});
export type VolumeMount = z.infer<typeof VolumeMount>;

/** How a container's files get their ownership, best first: see manager/ownership/mode-select.ts. */
export const OwnershipMode = z.enum(['idmap', 'shiftfs', 'clone', 'chown']);
export type OwnershipMode = z.infer<typeof OwnershipMode>;

export const ErrorCode = z.enum([
  'exhausted',
  'invalid-size',
  'not-found',
  'invalid-request',
  'conflict',
  'host-action-failed',
  'unsupported',
  'internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

const Range = z.object({ start: z.int(), size: z.int() });

export const Allocation = z.object({ uid: z.int(), gid: z.int(), size: z.int() });
export type Allocation = z.infer<typeof Allocation>;

export const METHODS = {
  ping: {
    params: z.object({}),
    result: z.object({ version: z.string(), apiVersion: z.literal(API_VERSION), pid: z.int() }),
    idempotent: true,
  },
  /**
   * Registers a container about to be created and returns its subid allocation (unless the config
   * already carries a user namespace, `userns: 'caller'`). Idempotent for the same id and runtime root.
   */
  register: {
    params: z.object({
      id: ContainerId,
      runtimeRoot: AbsPath,
      bundle: AbsPath,
      /** pid and start time of the create call; a dead shim with no runc state means a failed create. */
      shimPid: z.int().check(z.positive()),
      shimStartTime: z.string(),
      /** Store volumes (e.g. /var/lib/docker) to create, or keep from the container's last run. */
      storeVolumes: z.optional(
        z.object({
          /** The container's rootfs on the host, image ownership (content is synced in from it). */
          rootfs: AbsPath,
          mountpoints: z.array(AbsPath),
          /** Docker's --rm: no sync-out at stop, volumes go with the container. */
          autoRemove: z.boolean(),
          /** The rootfs overlay's upper dir: where sync-out writes once the overlay is unmounted. */
          upperdir: z.optional(AbsPath),
        }),
      ),
      /**
       * What the manager needs to choose the ownership mode: the setting (auto, or a forced mode),
       * the rootfs layers to probe for idmapped-mount support, and the bind sources that would get
       * an idmapped view (each probed too; the ones that cannot be idmapped are chowned instead).
       */
      ownership: z.optional(
        z.object({
          requested: z.enum(['auto', 'idmap', 'shiftfs', 'clone', 'chown']),
          /** Where the setting came from, for error messages (e.g. "runtime flag --sysrunc-ownership"). */
          origin: z.optional(z.string()),
          /** The rootfs directory, or an overlay's layers and upper dir. */
          rootfsPaths: z.array(AbsPath).check(z.minLength(1)),
          overlay: z.boolean(),
          /** The overlay's upper dir: a kept clone goes when it does (docker rm). */
          upperdir: z.optional(AbsPath),
          /** The engine overlay's options sysrunc's overlay carries (probed with them); '' is a flag. */
          overlayOptions: z.optional(z.record(z.string(), z.string())),
          /** Docker's --rm: nothing is kept after the container stops. */
          autoRemove: z.boolean(),
          /** Host bind sources (resolved) that need container-root ownership inside. */
          bindSources: z.array(z.object({ path: AbsPath, readOnly: z.boolean() })),
        }),
      ),
      userns: z.discriminatedUnion('from', [
        z.object({ from: z.literal('allocate'), size: z.optional(z.number()) }),
        z.object({ from: z.literal('caller'), uidMappings: z.array(IdMapping).check(z.minLength(1)), gidMappings: z.array(IdMapping).check(z.minLength(1)) }),
        /** Joins namespaces of the container `owner`: its user namespace, mappings and range too. */
        z.object({ from: z.literal('share'), owner: ContainerId }),
      ]),
    }),
    result: z.object({
      uidMappings: z.array(IdMapping),
      gidMappings: z.array(IdMapping),
      /** Per-container directory, traversable by the container's root only (and host root). */
      runDir: AbsPath,
      /** Bind mounts of the store volumes, parents first; owned by the container's root. */
      volumeMounts: z.array(VolumeMount),
      /** The manager's choice (absent when the request had no ownership). */
      ownership: z.optional(
        z.object({
          mode: OwnershipMode,
          reason: z.string(),
          /**
           * Per bind source: an idmapped view, a chown in place (chown-tree), or left as it is (a
           * read-only source that cannot be idmapped: its files show as nobody inside).
           */
          bindSources: z.array(z.object({ path: AbsPath, how: z.enum(['idmap', 'chown', 'none']) })),
        }),
      ),
    }),
  },
  /**
   * The whole of a create or run, in one round trip: the manager reads the caller's bundle (never
   * changing it), registers the container, transforms its config, carries out the host actions,
   * and writes the result into a bundle of its own, which the caller hands to runc. The caller's
   * pid is the process that becomes runc: when it exits without runc having the container, the
   * manager undoes everything at once.
   */
  prepare: {
    params: z.object({
      id: ContainerId,
      command: z.enum(['create', 'run']),
      /** The caller's bundle directory, absolute. */
      bundle: AbsPath,
      runtimeRoot: AbsPath,
      callerPid: z.int().check(z.positive()),
      callerStartTime: z.string(),
      /** runc's global --systemd-cgroup flag was given. */
      systemdCgroup: z.optional(z.boolean()),
      /**
       * sysrunc's global flags of the call, `--sysrunc-<name>=<value>` (the operator's runtimeArgs):
       * flag name without dashes -> value. Trusted settings, below annotations (setting-sources.ts).
       */
      runtimeFlags: z.optional(z.record(z.string().check(z.maxLength(64)), z.string().check(z.maxLength(256)))),
    }),
    result: z.object({
      /** The prepared bundle: its config.json is the transformed one; root.path and sources are absolute. */
      bundle: AbsPath,
      /** Settings or sharing the caller should hear about (logged like runc's warnings). */
      warnings: z.array(z.string()),
      /** sync: the caller must wait for the manager's cleanup after runc is done (see bin/sysrunc). */
      cleanup: z.enum(['sync', 'async']),
    }),
    /** A new manager releases the half-prepared container of the same caller and starts afresh. */
    idempotent: true,
  },
  /**
   * prepare from a create or run call's raw argv, for the C client (dist/sysrunc-prepare-call),
   * which knows nothing of runc's flags: the manager parses argv as the per-call binary does,
   * resolves relative paths against cwd, then does what prepare does. A bad call is an answer
   * too: exitCode and the messages, formatted in the call's --log-format. The client performs
   * `writes` in order, then prints `stdout` (bin/sysrunc's lines) and exits with exitCode.
   */
  prepareCall: {
    params: z.object({
      /** The argv after the program name, as bin/sysrunc received it (sysrunc's flags included). */
      argv: z.array(z.string().check(z.maxLength(65536))).check(z.maxLength(4096)),
      cwd: AbsPath,
      callerPid: z.int().check(z.positive()),
      /** The client execs runc itself when the answer says how (`runc`). */
      handOver: z.optional(z.boolean()),
    }),
    result: z.object({
      exitCode: z.int().check(z.nonnegative()),
      /** The caller's log file as given (relative: to its cwd) or, without `file`, its stderr. */
      writes: z.array(z.object({ text: z.string(), file: z.optional(z.string()) })),
      /** On success, the lines bin/sysrunc reads; '' otherwise. */
      stdout: z.string(),
      /**
       * With handOver, on success, unless runc must run under the per-call binary (a foreground run
       * whose cleanup is waited for): runc's argv after its name, run with the caller's bundle and
       * the prepared config bound over the caller's config.json in a mount namespace of its own.
       */
      runc: z.optional(z.object({ argv: z.array(z.string()), preparedConfig: AbsPath, callerBundle: AbsPath })),
    }),
    /** As prepare. */
    idempotent: true,
  },
  deleteCall: DELETE_CALL,
  /** Carries out host actions for a registered container, in order; all or nothing. */
  apply: {
    params: z.object({ id: ContainerId, actions: z.array(HostAction) }),
    /** warnings: actions skipped on purpose (a bind source another container already shifted). */
    result: z.object({ applied: z.int(), warnings: z.optional(z.array(z.string())) }),
  },
  /** Undoes everything done for the container, frees its allocation, forgets it. */
  release: {
    /** runtimeRoot guards against releasing a namesake created under another runc root. */
    params: z.object({ id: ContainerId, runtimeRoot: AbsPath }),
    result: z.object({ found: z.boolean(), bundle: z.optional(AbsPath) }),
    /** A second release finds nothing, or finishes the first. */
    idempotent: true,
  },
  /**
   * Releases every container that is gone now (runc deleted it, or its create died) and waits for
   * releases under way: what the manager does on its own as soon as it notices, done on demand
   * (operators, tests that check nothing is left behind).
   */
  sweep: {
    params: z.object({}),
    result: z.object({ released: z.array(ContainerId) }),
    idempotent: true,
  },
  list: {
    params: z.object({}),
    result: z.object({
      containers: z.array(
        z.object({
          id: ContainerId,
          runtimeRoot: AbsPath,
          bundle: AbsPath,
          uidMappings: z.array(IdMapping),
          gidMappings: z.array(IdMapping),
          actions: z.array(HostAction),
        }),
      ),
    }),
    idempotent: true,
  },
  /** Read-only: what the manager holds, for operators (sysrunc-ctl status). */
  status: {
    params: z.object({}),
    result: z.object({
      mode: z.enum(['exclusive', 'common']),
      ranges: z.object({ uid: z.array(Range), gid: z.array(Range), freeUid: z.array(Range), freeGid: z.array(Range) }),
      allocations: z.array(z.object({ id: z.string(), uid: z.int(), gid: z.int(), size: z.int() })),
      containers: z.array(
        z.object({
          id: ContainerId,
          bundle: AbsPath,
          uidMappings: z.array(IdMapping),
          ownership: z.optional(z.object({ mode: OwnershipMode, reason: z.string() })),
          stopped: z.boolean(),
          actions: z.array(HostAction),
        }),
      ),
      volumes: z.array(z.object({ id: z.string(), mountpoint: z.string(), hostDir: z.string(), mode: z.enum(['copy', 'in-layer']), bytes: z.int() })),
      /** sysrunc's lxcfs: off (--lxcfs off), missing (not installed), starting, up, down (restarting). */
      lxcfs: z.optional(
        z.object({
          state: z.enum(['off', 'missing', 'starting', 'up', 'down']),
          binary: z.string(),
          mountpoint: z.string(),
          pid: z.optional(z.int()),
          restarts: z.int(),
          layers: z.int(),
          message: z.optional(z.string()),
        }),
      ),
    }),
    idempotent: true,
  },
} as const;

export type MethodName = keyof typeof METHODS;
export type Params<M extends MethodName> = z.infer<(typeof METHODS)[M]['params']>;
export type Result<M extends MethodName> = z.infer<(typeof METHODS)[M]['result']>;

export const Request = z.object({
  v: z.literal(API_VERSION),
  seq: z.int(),
  method: z.string(),
  params: z.unknown(),
});

export const Response = z.union([
  z.object({ seq: z.int(), result: z.unknown() }),
  z.object({ seq: z.int(), error: z.object({ code: ErrorCode, message: z.string() }) }),
]);

/** The manager's API as src/rpc/ serves and calls it. */
export const MANAGER_API: ServiceApi<typeof METHODS> = { what: 'manager', daemon: 'sysrunc-mgr', version: API_VERSION, methods: METHODS, errorCode: ErrorCode };
