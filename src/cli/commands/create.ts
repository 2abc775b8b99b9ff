// create and run: prepare the host through the manager, rewrite the bundle's config.json through
// the transform pipeline, then hand over to the real runc with the argv unchanged.
import path from 'node:path';
import type { Invocation } from '../../oci/invocation.ts';
import { parseCreateArgs, type CreateArgs } from '../../oci/command-args.ts';
import { loadBundle, restoreBundleConfig, writeBundleConfig, type LoadedBundle } from '../../oci/bundle.ts';
import { validateSpecDocument } from '../../oci/validate.ts';
import { loadSysruncConfig } from '../../config/sysrunc-config.ts';
import { resolveRuntimeBinary } from '../../oci/runtime-binary.ts';
import { runPipeline } from '../../spec-transform/pipeline.ts';
import { gatherHostFacts, type HostFacts } from '../../spec-transform/gather-facts.ts';
import { readSettings, type ContainerSettings } from '../../spec-transform/settings.ts';
import { isReadOnlyMount } from '../../spec-transform/bind-mount-ownership.ts';
import type { Params } from '../../manager-api/v1.ts';
import { callerUserns } from '../../spec-transform/user-namespace.ts';
import { ManagerClient, ManagerError } from '../../manager-client/client.ts';
import { SysruncError } from '../../errors.ts';
import { execReplace } from '../../host/exec.ts';
import { processStartTime } from '../../manager/liveness.ts';
import { runForeground } from '../run-foreground.ts';
import { runcInheritedFdCount } from '../inherited-fds.ts';
import { reportWarning, type LogTarget } from '../report-error.ts';
import { DEFAULT_RUNC_ROOT, releaseContainer } from '../release.ts';

export async function createCommand(inv: Invocation, command: 'create' | 'run'): Promise<number> {
  const args = parseCreateArgs(command, inv.commandArgs);
  const config = loadSysruncConfig();
  const runtime = resolveRuntimeBinary(config.runtime);
  const bundle = loadBundle(args.bundle);
  const runtimeRoot = path.resolve(inv.globals.root ?? DEFAULT_RUNC_ROOT);

  const client = await ManagerClient.connect(config.managerSocket);
  try {
    await prepare(client, bundle, args, runtimeRoot, command, { log: inv.globals.log, logFormat: inv.globals.logFormat });
  } finally {
    client.close();
  }

  const argv = [runtime, ...inv.argv];
  // A foreground `run` without --keep ends with runc deleting the container itself, so sysrunc
  // must stay around to undo its changes afterwards; every other form is a plain hand-over.
  if (command === 'run' && !args.detach && !args.keep) {
    const code = await runForeground(runtime, argv, args.preserveFds);
    await releaseContainer(config.managerSocket, args.id, runtimeRoot);
    return code;
  }
  return execReplace(runtime, argv, process.env, { keepFds: runcInheritedFdCount(args.preserveFds) });
}

async function prepare(client: ManagerClient, bundle: LoadedBundle, args: CreateArgs, runtimeRoot: string, command: string, logTarget: LogTarget): Promise<void> {
  const settings = readSettings(bundle.spec);
  const facts = gatherHostFacts(bundle.spec, bundle.dir);
  const caller = callerUserns(bundle.spec);
  if (caller !== undefined && (caller.uidMappings.length === 0 || caller.gidMappings.length === 0)) {
    throw new SysruncError(`${command} ${args.id}: the config joins or creates a user namespace without uidMappings/gidMappings; sysrunc needs the mappings to set up ownership`);
  }

  const registered = await client
    .call('register', {
      id: args.id,
      runtimeRoot,
      bundle: bundle.dir,
      shimPid: process.pid,
      shimStartTime: processStartTime(process.pid) ?? '',
      userns: caller === undefined ? { from: 'allocate', size: settings.usernsSize } : { from: 'caller', ...caller },
      ownership: ownershipRequest(bundle, facts, settings),
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
    })
    .catch((err: unknown) => {
      // The manager judges the size against its ranges; the user needs to know which setting.
      const origin = settings.origins['userns.size'];
      if (err instanceof ManagerError && err.code === 'invalid-size' && origin !== undefined) {
        throw new SysruncError(`${origin}: ${err.message}`);
      }
      throw err;
    });
  // From here on, any failure undoes everything: the manager's record, mounts, allocation, config.
  try {
    const ownership = registered.ownership;
    if (ownership === undefined) throw new SysruncError(`manager at ${client.socketPath} chose no ownership mode; is it older than this sysrunc?`);
    const { spec, actions } = runPipeline(bundle.spec, {
      containerId: args.id,
      bundleDir: bundle.dir,
      runDir: registered.runDir,
      userns: { uidMappings: registered.uidMappings, gidMappings: registered.gidMappings, fromCaller: caller !== undefined },
      settings,
      hookBinary: hookBinary(),
      ...facts,
      ownership: { mode: ownership.mode, bindSources: new Map(ownership.bindSources.map((b) => [b.path, b.how])) },
      volumeMounts: registered.volumeMounts,
    });
    const check = validateSpecDocument(spec);
    if (!check.ok) {
      throw new SysruncError(`${command} ${args.id}: transformed config.json is not a valid OCI config (a sysrunc bug): ${check.errors[0]}`);
    }
    const applied = await client.call('apply', { id: args.id, actions: [...actions] });
    for (const warning of applied.warnings ?? []) reportWarning(warning, logTarget);
    writeBundleConfig(bundle, spec);
  } catch (err) {
    await client.call('release', { id: args.id, runtimeRoot }).catch(() => undefined);
    restoreBundleConfig(bundle.dir);
    throw err;
  }
}

/** What the manager needs to choose how the container's root gets ownership of its files. */
function ownershipRequest(bundle: LoadedBundle, facts: HostFacts, settings: ContainerSettings): Params<'register'>['ownership'] {
  const overlay = facts.rootfs.overlay;
  const readOnly = new Map<string, boolean>();
  for (const [index, fact] of facts.bindSources) {
    const mount = bundle.spec.mounts?.[index];
    // One source mounted twice is read-only only if every mount of it is.
    readOnly.set(fact.resolved, (readOnly.get(fact.resolved) ?? true) && mount !== undefined && isReadOnlyMount(mount));
  }
  return {
    requested: settings.ownership,
    ...(settings.origins.ownership === undefined ? {} : { origin: settings.origins.ownership }),
    rootfsPaths: overlay === undefined ? [facts.rootfs.resolved] : [...overlay.lowerdirs, ...(overlay.upperdir === undefined ? [] : [overlay.upperdir])],
    overlay: overlay !== undefined,
    ...(overlay?.upperdir === undefined ? {} : { upperdir: overlay.upperdir }),
    autoRemove: facts.storeVolumes.autoRemove,
    bindSources: [...readOnly].map(([p, ro]) => ({ path: p, readOnly: ro })),
  };
}

/** bin/sysrunc-delegate-cgroups beside this bundle (dist/sysrunc.mjs): hooks get no PATH guarantees. */
function hookBinary(): string {
  return path.resolve(path.dirname(process.argv[1] ?? '.'), '..', 'bin', 'sysrunc-delegate-cgroups');
}
