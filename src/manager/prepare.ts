// The manager's side of `create` and `run`: everything sysrunc does before runc, in one request.
// The per-call binary only forwards the call and hands the prepared bundle to runc; running this
// in the long-lived manager means no process start-up, no module loading and no schema compiling
// per container, and host facts read through /proc/<caller>.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Params, Result } from '../manager-api/v1.ts';
import { loadBundle, type LoadedBundle } from '../oci/bundle.ts';
import { validateSpecDocument } from '../oci/validate.ts';
import { runPipeline } from '../spec-transform/pipeline.ts';
import { gatherHostFacts, type HostFacts } from '../spec-transform/gather-facts.ts';
import type { ContainerSettings } from '../spec-transform/settings.ts';
import { resolveSettings } from '../spec-transform/setting-sources.ts';
import { isEngineFile, isReadOnlyMount } from '../spec-transform/bind-mount-ownership.ts';
import { isPodVolume, podsDirIsPrivate } from '../spec-transform/pod-volumes.ts';
import { callerUserns } from '../spec-transform/user-namespace.ts';
import { grantsSystemCapabilities } from '../spec-transform/system-capabilities.ts';
import type { HostAction } from '../manager-api/v1.ts';
import { SysruncError } from '../common/errors.ts';
import type { ContainerHint } from './prepared-bundles.ts';
import { ServiceError } from './service-error.ts';
import { faultPoint } from '../testing/fault.ts';
import { sharedUserns, type SharedUserns } from './shared-namespaces.ts';
import type { ContainerRecord } from './registry.ts';
import type { LxcfsFact } from '../spec-transform/lxcfs-view.ts';
import { startMountListener } from './lxcfs/mount-listener.ts';
import { mountListenerPaths } from '../spec-transform/lxcfs-nested.ts';
import { JOURNALD_CONFIG_FILE } from '../spec-transform/systemd.ts';
import { RUNC_1_1_FEATURES, type RuntimeFeatures } from '../spec-transform/runtime-features.ts';
import { UNTIMED, type StepMarks } from './step-timings.ts';

/** What prepare needs of the service (register, apply, release) and of the host layout. */
export interface PrepareHost {
  register(p: Params<'register'>, steps: StepMarks): Promise<Result<'register'>>;
  apply(p: Params<'apply'>, steps: StepMarks): Promise<Result<'apply'>>;
  /** Undoes a container whose prepare failed half-way. */
  abandon(id: string, runtimeRoot: string): Promise<void>;
  writeConfig(id: string, text: string): string;
  writeHint(id: string, hint: ContainerHint): void;
  /** The createRuntime hook that delegates cgroups (bin/sysrunc-delegate-cgroups). */
  readonly hookBinary: string;
  /** The containers the manager has records of (owners of namespaces a config may join). */
  records(): readonly ContainerRecord[];
  /** A setting was ignored (the container's environment may not choose it): the manager's log. */
  warnIgnored(id: string, message: string): void;
  /** The lxcfs files containers bind, while sysrunc's lxcfs has been up (none: no lxcfs). */
  lxcfs?(): LxcfsFact | undefined;
  /** What the real runc does itself, learned once at the manager's start (none: as runc 1.1). */
  readonly runtimeFeatures?: RuntimeFeatures;
}

export async function prepareContainer(host: PrepareHost, p: Params<'prepare'>, steps: StepMarks = UNTIMED): Promise<Result<'prepare'>> {
  const bundle = asRequestError(() => loadBundle(p.bundle));
  steps.mark('bundle');
  const { settings, ignored } = asRequestError(() => resolveSettings(bundle.spec, p.runtimeFlags ?? {}));
  for (const message of ignored) host.warnIgnored(p.id, message);
  steps.mark('settings');
  const caller = callerUserns(bundle.spec);
  const callerRoot = caller === undefined ? undefined : rootOf(caller);
  const facts = asRequestError(() =>
    gatherHostFacts(bundle.spec, bundle.dir, { pid: p.callerPid, systemdCgroup: p.systemdCgroup === true, ...(callerRoot === undefined ? {} : { callerRoot }) }, p.id),
  );
  steps.mark('facts');
  if (caller !== undefined && (caller.uidMappings.length === 0 || caller.gidMappings.length === 0)) {
    throw new ServiceError('invalid-request', `${p.command} ${p.id}: the config joins or creates a user namespace without uidMappings/gidMappings; sysrunc needs the mappings to set up ownership`);
  }

  // Joining another sysrunc container's namespaces means joining its user namespace too.
  const runtime = host.runtimeFeatures ?? RUNC_1_1_FEATURES;
  const shared = caller === undefined ? sharedUserns(p.id, bundle.spec, p.callerPid, host.records(), runtime) : undefined;
  steps.mark('shared');
  const registered = await host.register(registerParams(p, bundle, facts, settings, caller, shared), steps).catch((err: unknown) => {
    // The manager judges the size against its ranges; the user needs to know which setting.
    const origin = settings.origins['userns.size'];
    if (err instanceof ServiceError && err.code === 'invalid-size' && origin !== undefined) throw new ServiceError(err.code, `${origin}: ${err.message}`);
    throw err;
  });
  // From here on, any failure undoes everything: the record, mounts, allocation, prepared bundle.
  try {
    const ownership = registered.ownership;
    const lxcfs = host.lxcfs?.();
    if (ownership === undefined) throw new ServiceError('internal', `${p.command} ${p.id}: no ownership mode was chosen`);
    const { spec, actions } = asRequestError(() =>
      runPipeline(bundle.spec, {
        containerId: p.id,
        bundleDir: bundle.dir,
        runDir: registered.runDir,
        userns: {
          uidMappings: registered.uidMappings,
          gidMappings: registered.gidMappings,
          fromCaller: caller !== undefined,
          ...(shared === undefined ? {} : { join: { path: shared.path, types: shared.types } }),
        },
        settings,
        hookBinary: installedHook(host.hookBinary, 'sysrunc-delegate-cgroups', host.hookBinary),
        netnsHook: installedHook(host.hookBinary, 'sysrunc-adopt-netns', path.join(path.dirname(host.hookBinary), 'sysrunc-adopt-netns')),
        ...installedJournaldConfig(host.hookBinary),
        ...facts,
        ownership: { mode: ownership.mode, bindSources: new Map(ownership.bindSources.map((b) => [b.path, b.how])) },
        volumeMounts: registered.volumeMounts,
        lxcfs,
        runtime,
      }),
    );
    steps.mark('pipeline');
    const check = validateSpecDocument(spec);
    if (!check.ok) throw new ServiceError('internal', `${p.command} ${p.id}: transformed config.json is not a valid OCI config (a sysrunc bug): ${check.errors[0]}`);
    steps.mark('validate');
    const applied = await host.apply({ id: p.id, actions: [...actions] }, steps);
    // runc hands the container's notify fd to this socket at create: the listener must be up first.
    if (lxcfs?.mountListener !== undefined && spec.linux?.seccomp?.listenerPath === mountListenerPaths(registered.runDir).socket) {
      await startMountListener(lxcfs.mountListener, registered.runDir, lxcfs.files);
      steps.mark('mount-listener');
    }
    const dir = host.writeConfig(p.id, bundle.json.stringify(spec));
    steps.mark('config');
    faultPoint('create:config-written', p.callerPid);
    const hint = hintFor(grantsSystemCapabilities(bundle.spec, facts.engine, settings), ownership.mode, actions, registered.volumeMounts.length > 0 && !facts.storeVolumes.autoRemove);
    host.writeHint(p.id, hint);
    steps.mark('hint');
    faultPoint('create:prepared', p.callerPid);
    return { bundle: dir, warnings: applied.warnings ?? [], cleanup: hint.delete };
  } catch (err) {
    await host.abandon(p.id, p.runtimeRoot).catch(() => undefined);
    throw err;
  }
}

/**
 * Whether delete must wait for the manager: store volumes to sync out before dockerd removes the
 * layer, ownership changed on disk that must be reverted before anyone looks at it again. Every
 * other container's cleanup runs after runc's delete returns, when the manager sees it gone.
 */
function hintFor(grantsCapabilities: boolean, mode: string, actions: readonly HostAction[], keepsVolumes: boolean): ContainerHint {
  const changesDisk = mode === 'clone' || mode === 'chown' || actions.some((a) => a.kind === 'chown-tree');
  // The engine unmounts its rootfs path after delete and may mount its own overlay again at once
  // (restart): sysrunc's overlay in its place must be gone by then.
  const replacesEngineOverlay = actions.some((a) => (a.kind === 'overlay-mount' || a.kind === 'rootfs-clone') && a.replaces !== undefined);
  return {
    delete: keepsVolumes || changesDisk || replacesEngineOverlay ? 'sync' : 'async',
    // A container that narrowed its capabilities keeps them narrow for what is exec'd into it too.
    exec: grantsCapabilities ? 'grant-capabilities' : 'as-is',
  };
}

function registerParams(
  p: Params<'prepare'>,
  bundle: LoadedBundle,
  facts: HostFacts,
  settings: ContainerSettings,
  caller: ReturnType<typeof callerUserns>,
  shared: SharedUserns | undefined,
): Params<'register'> {
  return {
    id: p.id,
    runtimeRoot: p.runtimeRoot,
    bundle: bundle.dir,
    shimPid: p.callerPid,
    shimStartTime: p.callerStartTime,
    userns:
      caller !== undefined
        ? { from: 'caller', ...caller }
        : shared !== undefined
          ? { from: 'share', owner: shared.owner.id }
          : { from: 'allocate', ...(settings.usernsSize === undefined ? {} : { size: settings.usernsSize }) },
    ownership: ownershipRequest(p.id, bundle, facts, settings),
    ...(settings.systemContainer && settings.storeVolumes && facts.storeVolumes.mountpoints.length > 0
      ? {
          storeVolumes: {
            rootfs: facts.rootfs.resolved,
            mountpoints: [...facts.storeVolumes.mountpoints],
            autoRemove: facts.storeVolumes.autoRemove,
            ...(facts.rootfs.overlay?.upperdir === undefined ? {} : { upperdir: facts.rootfs.overlay.upperdir }),
          },
        }
      : {}),
  };
}

/** What the manager needs to choose how the container's root gets ownership of its files. */
function ownershipRequest(id: string, bundle: LoadedBundle, facts: HostFacts, settings: ContainerSettings): Params<'register'>['ownership'] {
  const overlay = facts.rootfs.overlay;
  const readOnly = new Map<string, boolean>();
  for (const [index, fact] of facts.bindSources) {
    // Only these get host root's ownership inside (the engine's files, a pod's own volumes); other
    // binds keep the container's own range.
    if (settings.bindOwnership !== 'host-root' && !isEngineFile(fact.resolved, id, bundle.spec) && !(isPodVolume(fact.resolved, bundle.spec) && podsDirIsPrivate())) continue;
    const mount = bundle.spec.mounts?.[index];
    // One source mounted twice is read-only only if every mount of it is.
    readOnly.set(fact.resolved, (readOnly.get(fact.resolved) ?? true) && mount !== undefined && isReadOnlyMount(mount));
  }
  return {
    requested: settings.ownership,
    ...(settings.origins.ownership === undefined ? {} : { origin: settings.origins.ownership }),
    // A rootfs the engine shifted has no overlay fact (its layers are the engine's detached mounts).
    rootfsPaths: overlay === undefined ? [facts.rootfs.resolved] : [...overlay.lowerdirs, ...(overlay.upperdir === undefined ? [] : [overlay.upperdir])],
    overlay: overlay !== undefined,
    ...(overlay?.upperdir === undefined ? {} : { upperdir: overlay.upperdir }),
    ...(overlay === undefined ? {} : { overlayOptions: { ...overlay.options } }),
    autoRemove: facts.storeVolumes.autoRemove,
    bindSources: [...readOnly].map(([path, ro]) => ({ path, readOnly: ro })),
  };
}

/** The host ids the caller's container root has (containerID 0), when both mappings name it. */
function rootOf(caller: NonNullable<ReturnType<typeof callerUserns>>): { uid: number; gid: number } | undefined {
  const uid = caller.uidMappings.find((m) => m.containerID === 0)?.hostID;
  const gid = caller.gidMappings.find((m) => m.containerID === 0)?.hostID;
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/** The caller's bundle or settings are wrong: a one-line error naming the thing, nothing changed. */
function asRequestError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SysruncError) throw new ServiceError('invalid-request', err.message);
    throw err;
  }
}

/** The journald drop-in in the install's config/ (beside bin/), if it is there. */
function installedJournaldConfig(hookBinary: string): { journaldConfig?: string } {
  const file = path.join(path.dirname(path.dirname(hookBinary)), 'config', JOURNALD_CONFIG_FILE);
  return existsSync(file) ? { journaldConfig: file } : {};
}

/**
 * A hook sysrunc adds (cgroup-delegation.ts, pod-network.ts): its C form in the install's dist/
 * where the build made it, else `reference`, the shell script in bin/ that does the same at the
 * cost of a few processes per create.
 */
function installedHook(hookBinary: string, name: string, reference: string): string {
  const native = path.join(path.dirname(path.dirname(hookBinary)), 'dist', name);
  return existsSync(native) ? native : reference;
}
