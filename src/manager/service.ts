// The manager's request handlers. The server runs them one at a time (SerialQueue), so no two
// creates can interleave an allocation or a mount; only a store volume's sync-out steps aside.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { HostAction, IdMapping, Params, Result } from '../manager-api/v1.ts';
import { faultPoint } from '../testing/fault.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { checkCallerMappings } from './caller-mappings.ts';
import { containerRoot } from './host-executor.ts';
import { processIsAlive, runcKnowsContainer, type KnownProcess } from './liveness.ts';
import { decideOwnership, OwnershipUnavailableError, type OwnershipDecision } from './ownership/decide.ts';
import { prepareContainer } from './prepare.ts';
import { rangeKeyOf, type ContainerRecord } from './registry.ts';
import { makeRunDir } from './run-dirs.ts';
import { releaseEngineSide, saveRecord, type RunDirRest } from './release-record.ts';
import { handBackAtExit } from './exit-hand-back.ts';
import { ServiceError } from './service-error.ts';
import { RUN_DIRS, type ServiceOptions } from './service-options.ts';
import { listContainers, managerStatus } from './service-queries.ts';
import { reconcileHost, sweepGone } from './service-recovery.ts';
import { allocateRange } from './service-allocation.ts';
import { StepTimings, UNTIMED, type StepMarks } from './step-timings.ts';
import { skipSharedChowns } from './shared-chowns.ts';

export { ServiceError };
export type { ContainerTracker, ServiceOptions } from './service-options.ts';

/** How long the run dir's part of a release the watch started waits for the delete's own call (ms). */
const DELETE_CALL_GRACE_MS = 20;

export class ManagerService {
  /** Releases under way, by id, until every part is done. */
  private readonly releasing = new Map<string, Promise<void>>();
  /** The engine's part of each release under way: what a delete waits for. */
  private readonly engineSides = new Map<string, Promise<RunDirRest | undefined>>();
  /** Releases whose engine part is done and whose run dir's part is still to come. */
  private readonly runDirRests = new Map<string, { run: () => Promise<void> }>();

  constructor(private readonly o: ServiceOptions) {
    // Container roots traverse it to reach their own run dir, and list nothing.
    mkdirSync(path.join(o.runBase, RUN_DIRS), { recursive: true, mode: 0o711 });
  }

  async prepare(p: Params<'prepare'>): Promise<Result<'prepare'>> {
    const steps = new StepTimings();
    const result = await prepareContainer(
      {
        register: (r, marks) => this.register(r, marks, { applyFollows: true }),
        apply: (a, marks) => this.apply(a, marks),
        abandon: async (id, runtimeRoot) => void (await this.release({ id, runtimeRoot })),
        writeConfig: (id, text) => this.o.bundles.writeConfig(id, text),
        writeHint: (id, hint) => this.o.bundles.writeHint(id, hint),
        hookBinary: this.o.hookBinary,
        records: () => this.o.registry.all(),
        warnIgnored: (id, message) => this.o.log.warn({ id }, `ignored setting: ${message}`),
        lxcfs: () => this.o.lxcfs?.fact(),
        ...(this.o.runtimeFeatures === undefined ? {} : { runtimeFeatures: this.o.runtimeFeatures }),
      },
      p,
      steps,
    );
    const record = this.o.registry.get(p.id);
    if (record !== undefined) this.o.tracker?.track(record);
    steps.mark('track');
    this.o.log.debug({ id: p.id, ...steps.summary() }, 'prepare steps');
    return result;
  }

  /**
   * A container the tracker saw go (runc deleted it, or its create died before runc had it):
   * released as a stop, as the sweep would, but at once.
   */
  async releaseIfGone(id: string): Promise<void> {
    const record = this.o.registry.get(id);
    // Released already but for the run dir's part, which is queued.
    if (record === undefined || record.stopped === true || this.runDirRests.has(id)) return;
    if (runcKnowsContainer(record.runtimeRoot, record.id) || processIsAlive(record.shimPid, record.shimStartTime)) return;
    // runc removes its state just before it exits, and a synchronous delete's call comes right
    // after: the run dir's part waits a moment, so that call finds the manager's thread free.
    await this.releaseOnce(record, { keep: true, answerFirst: true, restAfterMs: DELETE_CALL_GRACE_MS });
  }

  /** The watch saw the container's init exit: what the engine depends on goes back now (exit-hand-back.ts). */
  containerExited(id: string, init: KnownProcess): void {
    const record = this.o.registry.get(id);
    if (record === undefined || this.releasing.has(id) || this.runDirRests.has(id)) return;
    if (handBackAtExit(this.o, record, init)) this.o.bundles.deleteWaitsNoMore(id);
  }

  /** Resolves when no release is under way (called outside the request queue). */
  async allSettled(): Promise<void> {
    await Promise.all([...this.releasing.values()].map((p) => p.catch(() => undefined)));
  }

  /**
   * Resolves when no release of the container is under way, or the one under way has done the
   * engine's part (called outside the request queue).
   */
  async engineSettled(id: string): Promise<void> {
    await this.engineSides.get(id)?.catch(() => undefined);
  }

  /** The container's release has done the engine's part, its run dir's part still to come: its bundle. */
  engineReleased(id: string, runtimeRoot: string): { bundle: string } | undefined {
    const record = this.o.registry.get(id);
    if (!this.runDirRests.has(id) || record === undefined || record.runtimeRoot !== runtimeRoot) return undefined;
    return { bundle: record.bundle };
  }

  ping(): Result<'ping'> {
    return { version: SYSRUNC_VERSION, apiVersion: 1, pid: process.pid };
  }

  async register(p: Params<'register'>, steps: StepMarks = UNTIMED, how: { applyFollows?: boolean } = {}): Promise<Result<'register'>> {
    // A stopped container starting again with no size asked for keeps the range it holds (its kept
    // volumes or clone are in those ids), even one an earlier version granted from its environment.
    const kept = p.userns.from === 'allocate' && p.userns.size === undefined && this.o.registry.get(p.id)?.stopped === true ? this.o.allocator.lookup(p.id)?.size : undefined;
    const size = p.userns.from === 'allocate' ? (p.userns.size ?? kept ?? this.o.defaultSize) : undefined;
    if (size !== undefined && kept === undefined && this.o.maxSize !== undefined && size > this.o.maxSize) {
      throw new ServiceError('invalid-size', `container ${p.id}: ${size} ids is over the manager's bound of ${this.o.maxSize} ids per container (sysrunc-mgr --max-subid-size)`);
    }
    if (p.userns.from === 'caller') {
      // Before anything is recorded or swept: a refused request changes nothing.
      const held = this.o.allocator.list().map((a) => ({ id: a.id, start: a.uid, size: a.size }));
      const heldGids = this.o.allocator.list().map((a) => ({ id: a.id, start: a.gid, size: a.size }));
      const pool = this.o.allocator.pool();
      checkCallerMappings(p.id, 'uid', p.userns.uidMappings, held, pool.uid);
      checkCallerMappings(p.id, 'gid', p.userns.gidMappings, heldGids, pool.gid);
    }
    const existing = this.o.registry.get(p.id);
    // A stopped container starting again keeps its allocation and volumes; anything else is
    // either a live namesake (refused) or a leftover (released first).
    if (existing !== undefined && existing.stopped !== true) await this.resolveExisting(existing, p);
    steps.mark('register.existing');
    // Only what the tracker does not watch: checking every record made each create O(containers)
    // (100 running: ~100 stats and /proc reads per create, and a burst of creates quadratic). The
    // tracker releases the others when they go; when ranges run out, allocateOrSweep sweeps all.
    await this.sweepOrphans('unwatched');
    steps.mark('register.sweep');
    let ownership: OwnershipDecision | undefined;
    if (p.ownership !== undefined) {
      try {
        ownership = decideOwnership(p.ownership, this.o.ownership);
      } catch (err) {
        if (err instanceof OwnershipUnavailableError) throw new ServiceError('unsupported', err.message);
        throw err;
      }
    }
    // A stopped container's kept clone is of no use to a start that chose another mode.
    if (existing?.clone !== undefined && ownership?.mode !== 'clone') this.o.executor.discard(p.id);
    steps.mark('register.ownership');

    let uidMappings: IdMapping[];
    let gidMappings: IdMapping[];
    let sharedRange: string | undefined;
    const allocated = p.userns.from === 'allocate';
    if (p.userns.from === 'allocate') {
      const a = await this.allocateOrSweep(p.id, size ?? this.o.defaultSize);
      uidMappings = [{ containerID: 0, hostID: a.uid, size: a.size }];
      gidMappings = [{ containerID: 0, hostID: a.gid, size: a.size }];
    } else if (p.userns.from === 'share') {
      const owner = this.o.registry.get(p.userns.owner);
      if (owner === undefined || owner.stopped === true) throw new ServiceError('not-found', `container ${p.id}: joins namespaces of ${p.userns.owner}, which sysrunc has no running record of`);
      uidMappings = owner.uidMappings;
      gidMappings = owner.gidMappings;
      sharedRange = rangeKeyOf(owner);
    } else {
      uidMappings = p.userns.uidMappings;
      gidMappings = p.userns.gidMappings;
    }
    steps.mark('register.allocate');
    const record: ContainerRecord = {
      version: 1,
      id: p.id,
      runtimeRoot: p.runtimeRoot,
      bundle: p.bundle,
      shimPid: p.shimPid,
      shimStartTime: p.shimStartTime,
      createdAt: new Date().toISOString(),
      allocated,
      ...(sharedRange === undefined ? {} : { sharedRange }),
      uidMappings,
      gidMappings,
      runDir: path.join(this.o.runBase, RUN_DIRS, p.id),
      preparedBundle: true,
      actions: [],
      ...(p.storeVolumes === undefined
        ? {}
        : { volumes: { rootfs: p.storeVolumes.rootfs, autoRemove: p.storeVolumes.autoRemove, ...(p.storeVolumes.upperdir === undefined ? {} : { upperdir: p.storeVolumes.upperdir }) } }),
      ...(ownership === undefined ? {} : { ownership: { mode: ownership.mode, reason: ownership.reason } }),
      ...(ownership?.mode === 'clone' && p.ownership?.upperdir !== undefined
        ? { clone: { upperdir: p.ownership.upperdir, autoRemove: p.ownership.autoRemove } }
        : {}),
    };
    let volumeMounts: Result<'register'>['volumeMounts'] = [];
    try {
      // In a prepare, apply saves the record before the first host action; until then a crash
      // leaves only the run dir, which the start-up reconcile removes. Store volumes need it first.
      if (how.applyFollows !== true || (p.storeVolumes?.mountpoints.length ?? 0) > 0) this.save(record);
      else this.o.registry.remember(record);
      steps.mark('register.save');
      makeRunDir(record);
      steps.mark('register.runDir');
      faultPoint('create:allocated', p.shimPid);
      if (p.storeVolumes !== undefined && p.storeVolumes.mountpoints.length > 0) {
        const root = containerRoot(record);
        const created = await this.o.volumes.createVolumes(p.id, {
          rootfs: p.storeVolumes.rootfs,
          mountpoints: p.storeVolumes.mountpoints,
          uid: root.uid,
          gid: root.gid,
          size: uidMappings[0]?.size ?? this.o.defaultSize,
          // The data can stay in the layer only where the container sees its layer through idmapped mounts.
          ...(ownership?.mode === 'idmap' && p.storeVolumes.upperdir !== undefined ? { upperdir: p.storeVolumes.upperdir } : {}),
        });
        volumeMounts = created.mounts;
        steps.mark('register.volumes');
        faultPoint('create:volumes', p.shimPid);
      }
    } catch (err) {
      await releaseEngineSide(this.o, record, { keep: false, splitRunDir: false }).catch(() => undefined);
      throw new ServiceError('host-action-failed', `register ${p.id}: ${(err as Error).message}`);
    }
    const volumeModes = this.o.volumes.list().find((c) => c.id === p.id)?.volumes.map((v) => `${v.mountpoint}: ${v.layer === undefined ? 'copy' : `in-layer${v.layer.notBeside === undefined ? '' : ` (kept in the layer while running: ${v.layer.notBeside})`}`}`);
    this.o.log.info({ id: p.id, uid: uidMappings[0]?.hostID, size: uidMappings[0]?.size, allocated, volumes: volumeMounts.length, volumeModes, ownership }, 'registered container');
    steps.mark('register.log');
    return { uidMappings, gidMappings, runDir: record.runDir, volumeMounts, ...(ownership === undefined ? {} : { ownership }) };
  }

  async apply(p: Params<'apply'>, steps: StepMarks = UNTIMED): Promise<Result<'apply'>> {
    const record = this.o.registry.get(p.id);
    if (record === undefined) throw new ServiceError('not-found', `container ${p.id} is not registered`);
    const before = record.actions;
    // A container gone but not yet released (the create's sweep skips watched ones) owns nothing.
    for (const other of this.o.registry.all()) {
      if (other.id !== p.id && other.stopped !== true && other.actions.some((a) => a.kind === 'chown-tree')) await this.releaseIfGone(other.id);
    }
    const { actions, warnings } = skipSharedChowns(this.o.registry.all(), p.id, p.actions);
    // Write-ahead: recorded first, so a crash in the middle still knows what to undo.
    steps.mark('apply.others');
    this.save({ ...record, actions: [...before, ...actions] });
    steps.mark('apply.save');
    const done: HostAction[] = [];
    for (const action of actions) {
      try {
        await this.o.executor.perform(record, action);
        steps.mark(`apply.${action.kind}`);
        done.push(action);
        faultPoint(`create:mount-${before.length + done.length}`, record.shimPid);
      } catch (err) {
        for (const undone of [action, ...done.reverse()]) {
          try {
            this.o.executor.undo(record, undone);
          } catch (undoErr) {
            this.o.log.error({ id: p.id, err: (undoErr as Error).message }, 'undo after a failed action failed');
          }
        }
        this.save({ ...record, actions: before });
        throw new ServiceError('host-action-failed', (err as Error).message);
      }
    }
    for (const warning of warnings) this.o.log.warn({ id: p.id }, warning);
    return { applied: done.length, ...(warnings.length === 0 ? {} : { warnings }) };
  }

  async release(p: Params<'release'>): Promise<Result<'release'>> {
    const released = this.engineReleased(p.id, p.runtimeRoot);
    if (released !== undefined) return { found: true, ...released };
    const record = this.o.registry.get(p.id);
    if (record === undefined || record.stopped === true || record.runtimeRoot !== p.runtimeRoot) return { found: false };
    // Undoing mounts under a container runc still has would pull them from under its processes:
    // only a container runc has deleted (or never had) is released.
    if (runcKnowsContainer(record.runtimeRoot, record.id)) {
      throw new ServiceError('conflict', `release ${p.id}: runc still has the container in ${record.runtimeRoot}; delete it with runc first`);
    }
    await this.releaseOnce(record, { keep: true, answerFirst: true });
    return { found: true, bundle: record.bundle };
  }

  private save(record: ContainerRecord): void {
    saveRecord(this.o, record);
  }

  records(): ContainerRecord[] {
    return this.o.registry.all();
  }

  list(): Result<'list'> {
    return listContainers(this.o);
  }

  status(): Result<'status'> {
    return managerStatus(this.o);
  }

  /**
   * Brings records in line with reality: containers that no runc root knows and no create is
   * working on are released; allocations and mounts nobody records are dropped.
   */
  async reconcile(): Promise<{ released: string[] }> {
    return reconcileHost(this.o, (record, o) => this.releaseOnce(record, o));
  }

  /** Releases what belongs to containers that are gone (service-recovery.ts sweepGone). */
  async sweepOrphans(scope: 'all' | 'unwatched' = 'all'): Promise<string[]> {
    return sweepGone(this.o, (record, o) => this.releaseOnce(record, o), scope);
  }

  /** Manager shutdown: volumes of removed containers go; nothing a running or stopped one owns. */
  async shutdown(): Promise<void> {
    await this.sweepOrphans();
  }

  private async resolveExisting(existing: ContainerRecord, p: Params<'register'>): Promise<void> {
    if (runcKnowsContainer(existing.runtimeRoot, existing.id)) {
      // runc 1.1's wording (libcontainer ErrExist).
      throw new ServiceError('conflict', `container with given ID already exists: ${p.id}`);
    }
    if (existing.shimPid !== p.shimPid && processIsAlive(existing.shimPid, existing.shimStartTime)) {
      throw new ServiceError('conflict', `container ${p.id} is being created by pid ${existing.shimPid}`);
    }
    // Left over from a create that failed or a shim that died: start afresh.
    await this.releaseOnce(existing, { keep: true });
  }

  /**
   * allocate; when the ranges are full (or a namesake's range is still shared), after a sweep of
   * every record, since a container that is gone but not yet released may hold what is missing.
   */
  private async allocateOrSweep(id: string, size: number): Promise<{ uid: number; gid: number; size: number }> {
    try {
      return allocateRange(this.o, id, size);
    } catch (err) {
      if (!(err instanceof ServiceError) || (err.code !== 'exhausted' && err.code !== 'conflict')) throw err;
      if ((await this.sweepOrphans('all')).length === 0) throw err;
      return allocateRange(this.o, id, size);
    }
  }

  /**
   * A release, recorded as under way so that a waiting delete can wait for it. With `answerFirst`,
   * the run dir's part (release-record.ts) is left to a task of its own after this request, and this
   * resolves once the engine's part is done; otherwise once everything is. A release of a container
   * whose rest is still to come runs that rest now (the queued task then finds it done).
   */
  private async releaseOnce(record: ContainerRecord, how: { keep: boolean; answerFirst?: boolean; restAfterMs?: number }): Promise<void> {
    const pending = this.runDirRests.get(record.id);
    if (pending !== undefined) return pending.run();
    const answerFirst = how.answerFirst === true && this.o.afterRequest !== undefined;
    const engineSide = releaseEngineSide(this.o, record, { keep: how.keep, splitRunDir: answerFirst });
    const whole = engineSide.then((rest) => (rest === undefined ? undefined : this.finishLater(record.id, rest, how.restAfterMs ?? 0)));
    this.releasing.set(record.id, whole);
    this.engineSides.set(record.id, engineSide);
    void whole
      .catch(() => undefined)
      .finally(() => {
        if (this.releasing.get(record.id) !== whole) return;
        this.releasing.delete(record.id);
        this.engineSides.delete(record.id);
      });
    // Logged once all is done: what a test of "nothing left" can wait for.
    if (how.answerFirst === true) void whole.then(() => this.o.log.info({ id: record.id }, 'released container'), () => undefined);
    await (answerFirst ? engineSide : whole);
  }

  /**
   * The run dir's part of a release, queued after the current request (after delayMs, if given);
   * run at most once (a release of the same id meanwhile runs it at once).
   */
  private finishLater(id: string, rest: RunDirRest, delayMs: number): Promise<void> {
    let ran: Promise<void> | undefined;
    const run = (): Promise<void> => (ran ??= rest().finally(() => this.runDirRests.delete(id)));
    this.runDirRests.set(id, { run });
    const queue = (): Promise<void> => this.o.afterRequest?.(run) ?? run();
    const queued = delayMs === 0 ? queue() : new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(queue);
    return queued.catch((err: unknown) => {
      this.o.log.error({ id, err: (err as Error).message }, 'release of the run dir failed; the sweep tries again');
      throw err;
    });
  }
}

