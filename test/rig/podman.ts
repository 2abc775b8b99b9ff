// Rootful podman with a private store: --root under /var/lib/sysrunc-test/<name>, --runroot and
// tmpdir under /run/sysrunc-test/<name>, no network, cgroupfs, file events; nothing global.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execTool, type ExecOptions, type ExecResult } from './exec.ts';
import { ensureBusyboxRootfs, ensureRootfsTar } from './images.ts';
import { daemonEnv, rigDirs } from './paths.ts';
import { guardRig, releaseRig } from './safety.ts';

export interface PodmanRig {
  /** The private store's overlay dir: <root>/overlay. */
  readonly overlayDir: string;
  podman(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Removes every container and the store, then disarms the rig's safety net. */
  dispose(): Promise<void>;
}

export interface PodmanRigOptions {
  /** Default OCI runtime (path); podman's own default (runc) when absent. */
  readonly runtime?: string;
  /**
   * Environment of the runtime: conmon starts it with a clean environment, so the rig puts a
   * wrapper script that sets these before the runtime in its run dir.
   */
  readonly runtimeEnv?: Record<string, string>;
}

function runtimeWrapper(dir: string, runtime: string, env: Record<string, string>): string {
  const file = path.join(dir, 'runtime');
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'\n`).join('');
  writeFileSync(file, `#!/bin/sh\n${exports}exec '${runtime}' "$@"\n`, { mode: 0o755 });
  return file;
}

/** Starts nothing long-lived: podman runs per call; conmon per container. Imports bb:local. */
export async function startPodmanRig(name: string, o: PodmanRigOptions = {}): Promise<PodmanRig> {
  const dirs = rigDirs(name);
  guardRig(name);
  const root = path.join(dirs.lib, 'podman-root');
  const runroot = path.join(dirs.run, 'podman-run');
  const tmpdir = path.join(dirs.run, 'podman-tmp');
  for (const d of [root, runroot, tmpdir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const runtime = o.runtime === undefined ? undefined : runtimeWrapper(dirs.run, o.runtime, o.runtimeEnv ?? {});
  const global = [
    '--root', root, '--runroot', runroot, '--tmpdir', tmpdir, '--storage-driver', 'overlay',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--log-level', 'error',
    ...(runtime === undefined ? [] : ['--runtime', runtime]),
  ];
  const env = { ...daemonEnv(), CONTAINERS_CONF: '/dev/null', CONTAINERS_REGISTRIES_CONF: '/dev/null' };
  const podman = (args: readonly string[], opts: ExecOptions = {}) => execTool('podman', [...global, ...args], env, opts);
  const tar = await ensureRootfsTar(await ensureBusyboxRootfs());
  await podman(['import', '--change', 'CMD ["sh"]', tar, 'localhost/bb:local']);
  return {
    overlayDir: path.join(root, 'overlay'),
    podman,
    async dispose() {
      try {
        await podman(['rm', '--all', '--force', '--time', '0'], { reject: false });
        await podman(['system', 'reset', '--force'], { reject: false });
      } finally {
        releaseRig(name);
      }
    },
  };
}
