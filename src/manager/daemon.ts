// Wires the manager together: state, subid ranges, allocator, registry, reconciliation, socket.
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { removeStaleTempFiles, writeFileAtomic } from '../common/atomic-file.ts';
import { ensureSysruncRange } from './subid-ranges.ts';
import type { SubidMode } from './subid-alloc.ts';
import { openSubidAllocator, SubidStore } from './subid-store.ts';
import { heldRanges, Registry } from './registry.ts';
import { HostExecutor } from './host-executor.ts';
import { RootfsCloner } from './ownership/rootfs-cloner.ts';
import { chownInChild } from './ownership/chown-child.ts';
import { detectShiftfs } from './ownership/shiftfs.ts';
import { probeIdmappedOverlay } from '../host/idmapped-overlay-probe.ts';
import { lowerdirSupport } from '../host/overlay-mount.ts';
import type { OwnershipSetting } from './ownership/decide.ts';
import { ManagerService } from './service.ts';
import { ContainerWatch } from './container-watch.ts';
import { PreparedBundles } from './prepared-bundles.ts';
import { createManagerServer, queueAfterRequest, SerialQueue } from './server.ts';
import { listenOnSocket, socketAnswers, SocketTakenError } from '../rpc/listen.ts';
import { VolumeManager } from './volumes/volume-manager.ts';
import { processIsAlive, processStartTime } from './liveness.ts';
import { killOrphanedSocketHolders } from './orphans.ts';
import { maxSubidSize } from './subid-bound.ts';
import { LxcfsSupervisor } from './lxcfs/supervisor.ts';
import { learnRuntimeFeatures } from '../host/runc-features.ts';
import { RUNC_1_1_FEATURES, runtimeFeaturesOf, type RuntimeFeatures } from '../spec-transform/runtime-features.ts';
import { loadSysruncConfig } from '../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../oci/runtime-binary.ts';

export interface ManagerOptions {
  readonly socket: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly subidMode: SubidMode;
  readonly subidSize: number;
  /** The most ids one container may ask for; default: subidSize x 16 (see maxSubidSize). */
  readonly maxSubidSize?: number;
  readonly subuidFile: string;
  readonly subgidFile: string;
  readonly passwdFile: string;
  readonly groupFile: string;
  /** How often stopped containers are checked for removal (their volumes then go), in ms. */
  readonly sweepIntervalMs: number;
  /** What a container asking for `auto` ownership gets (a forced mode, or auto). */
  readonly ownershipDefault?: OwnershipSetting;
  /** The script this manager runs from (process.argv[1]), for children of itself; default: in process. */
  readonly entryPoint?: string;
  /** The cgroup delegation hook; default: bin/sysrunc-delegate-cgroups beside the entry point's dist/. */
  readonly hookBinary?: string;
  /** sysrunc's own lxcfs (default on), and its executable (default `lxcfs` in PATH). */
  readonly lxcfs?: { readonly enabled: boolean; readonly binary: string };
  /** The real runc whose `features` say what it does itself; default: sysrunc's config (`runtime`). */
  readonly runtime?: string;
}

function defaultHookBinary(entryPoint: string | undefined): string {
  const dist = path.dirname(entryPoint ?? process.argv[1] ?? '.');
  return path.resolve(dist, '..', 'bin', 'sysrunc-delegate-cgroups');
}

/** runc's own features, once per manager: what sysrunc leaves to runc (spec-transform/runtime-features.ts). */
function learnRuntime(configured: string | undefined, log: Logger): RuntimeFeatures {
  let binary: string;
  try {
    binary = resolveRuntimeBinary(configured ?? loadSysruncConfig().runtime);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'runtime features unknown: sysrunc does everything itself, as for runc 1.1');
    return RUNC_1_1_FEATURES;
  }
  const learned = learnRuntimeFeatures(binary, runtimeFeaturesOf, RUNC_1_1_FEATURES);
  if (learned.problem !== undefined) log.warn({ runtime: binary, err: learned.problem }, 'runtime features unknown: sysrunc does everything itself, as for runc 1.1');
  else log.info({ runtime: binary, runtimeFeatures: learned.features }, 'learned what the runtime does itself');
  return learned.features;
}

export interface RunningManager {
  readonly server: Server;
  readonly service: ManagerService;
  close(): Promise<void>;
}

export class ManagerStartError extends Error {
  override readonly name = 'ManagerStartError';
}

export async function startManager(o: ManagerOptions, log: Logger): Promise<RunningManager> {
  // Traversable (not listable): container roots reach their store volumes below it by name.
  mkdirSync(o.stateDir, { recursive: true, mode: 0o711 });
  chmodSync(o.stateDir, 0o711);
  await refuseSecondInstance(o, log);
  writeFileAtomic(path.join(o.stateDir, 'mgr.pid'), `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);

  const ranges = ensureSysruncRange({
    subuidPath: o.subuidFile,
    subgidPath: o.subgidFile,
    passwdPath: o.passwdFile,
    groupPath: o.groupFile,
  });
  if (ranges.added) {
    log.info({ uidRanges: ranges.uidRanges, gidRanges: ranges.gidRanges }, `added subordinate id ranges for user sysrunc to ${o.subuidFile} and ${o.subgidFile}`);
  }
  const registry = new Registry(o.stateDir);
  const queue = new SerialQueue();
  const afterRequest = queueAfterRequest(queue);
  const allocator = openSubidAllocator({
    uidRanges: ranges.uidRanges,
    gidRanges: ranges.gidRanges,
    mode: o.subidMode,
    store: new SubidStore(path.join(o.stateDir, 'subid.json')),
    held: heldRanges(registry.all()),
    deferAllocWrites: (write) => {
      void afterRequest(async () => write()).catch((err: unknown) => log.error({ err: String(err) }, 'writing the subid state failed (the ranges in use stay in their container records)'));
    },
  });
  for (const warning of allocator.warnings) log.warn(warning);
  let maxSize: number;
  try {
    maxSize = maxSubidSize({ defaultSize: o.subidSize, ...(o.maxSubidSize === undefined ? {} : { wanted: o.maxSubidSize }) }, allocator.pool().uid, allocator.pool().gid, log);
  } catch (err) {
    throw new ManagerStartError((err as Error).message);
  }

  // Traversable but not listable: container roots reach their own dir by name only.
  mkdirSync(o.runDir, { recursive: true, mode: 0o711 });
  chmodSync(o.runDir, 0o711);
  // A manager killed -9 in the middle of a state write leaves its temp file behind.
  const bundles = new PreparedBundles(o.runDir, o.socket);
  for (const dir of [o.stateDir, path.join(o.stateDir, 'containers'), path.join(o.stateDir, 'journals'), bundles.hintsDir]) {
    // Hint files are named by bare container id, which may look like an old-style temp name.
    for (const file of removeStaleTempFiles(dir, { legacyNames: dir !== bundles.hintsDir })) log.warn({ file }, 'removed a temp file left by an interrupted write');
  }
  const runtime = learnRuntime(o.runtime, log);
  const lxcfs = new LxcfsSupervisor({ runDir: o.runDir, enabled: o.lxcfs?.enabled ?? true, binary: o.lxcfs?.binary ?? 'lxcfs', log, mountListener: path.join(path.dirname(o.entryPoint ?? process.argv[1] ?? '.'), 'sysrunc-mount-listener') });
  let service: ManagerService | undefined;
  const watch = new ContainerWatch({
    log,
    maybeGone: (id) => {
      void queue.run(() => service?.releaseIfGone(id)).catch((err: unknown) => log.error({ id, err: String(err) }, 'release of a container gone failed'));
    },
    exited: (id, init) => {
      void queue.run(() => service?.containerExited(id, init)).catch((err: unknown) => log.error({ id, err: String(err) }, "hand-back at a container's exit failed"));
    },
  });
  const volumes = new VolumeManager({ root: path.join(o.stateDir, 'volumes'), stateFile: path.join(o.stateDir, 'volumes.json') });
  // Store volumes kept in the layer live beside it while sysrunc's overlay is over it (issue 25).
  const storeVolumes = {
    leaveLayer: (id: string) => {
      for (const problem of volumes.leaveLayers(id)) log.warn({ id }, problem);
    },
    returnToLayer: (id: string) => {
      for (const problem of volumes.returnToLayers(id)) log.error({ id }, problem);
    },
  };
  service = new ManagerService({
    runBase: o.runDir,
    allocator,
    registry,
    executor: new HostExecutor({
      // The clone's chown runs in a child of this very entry point, outside the request queue.
      cloner: new RootfsCloner(path.join(o.stateDir, 'clones'), o.entryPoint === undefined ? undefined : chownInChild(o.entryPoint)),
      journalDir: path.join(o.stateDir, 'journals'),
      offQueue: (fn) => queue.unlocked(fn),
      storeVolumes,
      runBase: o.runDir,
      overlayHeld: (id, { mountpoint, outgoing, waitedMs, gone }) => {
        const fields = { id, mountpoint, outgoing, waitedMs };
        if (gone) log.info(fields, 'overlay swap: the outgoing overlay was still held outside sysrunc; the incoming one was mounted once it was gone');
        else log.warn(fields, 'overlay swap: the outgoing overlay is still held outside sysrunc (a file or directory open in it, or a copy in another mount namespace); the incoming one is mounted beside it, and the kernel will warn that the upper dir is in use');
      },
      overlayUnwatched: (id, { mountpoint, outgoing, reason }) => {
        log.warn({ id, mountpoint, outgoing, reason }, 'overlay swap: no inotify watch could be set on the outgoing overlay (raise fs.inotify.max_user_watches or max_user_instances); the incoming one is mounted without waiting for it to go');
      },
    }),
    volumes,
    log,
    defaultSize: o.subidSize,
    maxSize,
    unlocked: (fn) => queue.unlocked(fn),
    afterRequest,
    ownership: {
      defaultMode: o.ownershipDefault ?? 'auto',
      shiftfs: detectShiftfs(),
      probeOverlay: (lowerdir, options) => probeIdmappedOverlay(lowerdir, options, o.runDir),
      overlaySyntax: () => lowerdirSupport(o.runDir).reason,
    },
    bundles,
    hookBinary: o.hookBinary ?? defaultHookBinary(o.entryPoint),
    tracker: watch,
    lxcfs,
    runtimeFeatures: runtime,
  });
  // In the queue like every other request: a release it makes may step out of the queue for a
  // store volume's sync-out (SerialQueue.unlocked), and steps back in when done; outside the queue,
  // stepping back in would take the queue for good and every later request would wait forever.
  const { released } = await queue.run(() => service.reconcile());
  log.info({ released: released.length, containers: service.list().containers.length }, 'reconciled container records');
  for (const record of service.records()) if (record.stopped !== true) watch.track(record);

  // After the reconcile (which leaves lxcfs's dir alone), before the first container.
  await lxcfs.start();
  const server = createManagerServer(service, log, queue);
  const sweep = setInterval(() => {
    void queue.run(() => service.sweepOrphans()).catch((err: unknown) => log.error({ err: String(err) }, 'sweep failed'));
  }, o.sweepIntervalMs);
  sweep.unref();
  try {
    await listenOnSocket(server, o.socket, 'sysrunc-mgr');
  } catch (err) {
    if (err instanceof SocketTakenError) throw new ManagerStartError(err.message);
    throw err;
  }
  log.info({ socket: o.socket, stateDir: o.stateDir, mode: o.subidMode, ownership: o.ownershipDefault ?? 'auto', maxSubidSize: maxSize, overlay: lowerdirSupport(o.runDir).reason }, 'sysrunc-mgr listening');

  return {
    server,
    service,
    close: async () => {
      clearInterval(sweep);
      watch.close();
      lxcfs.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(o.socket);
        } catch {
          // already gone
        }
      });
      await queue.run(() => service.shutdown());
    },
  };
}

/** One manager per state dir and per socket: a live pid file or an answering socket means no. */
async function refuseSecondInstance(o: ManagerOptions, log: Logger): Promise<void> {
  const pidFile = path.join(o.stateDir, 'mgr.pid');
  if (existsSync(pidFile)) {
    const [pid, start] = readFileSync(pidFile, 'utf8').trim().split(' ');
    if (pid !== undefined && Number(pid) !== process.pid && start !== undefined && processIsAlive(Number(pid), start)) {
      throw new ManagerStartError(`another sysrunc-mgr (pid ${pid}) is using ${o.stateDir}`);
    }
  }
  for (const helper of await killOrphanedSocketHolders(o.socket)) log.warn({ helper, socket: o.socket }, 'killed a user-namespace helper a killed sysrunc-mgr left holding its socket');
  if (await socketAnswers(o.socket)) throw new ManagerStartError(`another sysrunc-mgr is listening on ${o.socket}`);
}
