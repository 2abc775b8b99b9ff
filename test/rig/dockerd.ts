// A private dockerd (own data root, exec root, socket, cgroup parent) on top of a private containerd.
//
// dockerd 20.10 only starts its own managed containerd when /run/containerd/containerd.sock does
// not exist; otherwise it silently uses the system one. So the rig always starts its own containerd
// and passes --containerd explicitly.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { assertNameFree, launchContainerd, logTail, type ContainerdProcess } from './containerd.ts';
import { dockerCli } from './docker-cli.ts';
import { execTool, type ExecOptions, type ExecResult } from './exec.ts';
import { bins, daemonEnv, rigDirs, type RigDirs } from './paths.ts';
import { pidAlive, terminate, waitUntil } from './proc.ts';
import { guardRig, releaseRig, rigClean } from './safety.ts';

export { startContainerd, type ContainerdDaemon, type ContainerdOptions, type CtrRunOptions } from './containerd.ts';
export type { ExecOptions, ExecResult } from './exec.ts';

export interface RuntimeEntry {
  path: string;
  runtimeArgs?: string[];
}

export interface DockerdOptions {
  /** Unique among live rigs; part of socket paths ([a-z0-9][a-z0-9_.-]{0,39}). */
  name: string;
  /** daemon.json "runtimes". */
  runtimes: Record<string, RuntimeEntry>;
  defaultRuntime?: string;
  /** Extra environment for dockerd AND its containerd (shims and runtimes inherit containerd's). */
  env?: Record<string, string>;
  /** Extra daemon.json keys, merged over the rig's defaults. */
  daemonConfig?: Record<string, unknown>;
  /** Bounded wait for the API (default 60 s). */
  startTimeoutMs?: number;
}

/** Anything that can run docker CLI commands against a daemon. */
export interface DockerClient {
  docker(args: string[], opts?: ExecOptions): Promise<ExecResult>;
}

export interface DockerDaemon extends DockerClient {
  name: string;
  /** Unix socket path of the API. */
  socket: string;
  /** DOCKER_HOST value, unix://<socket>. */
  host: string;
  dataRoot: string;
  execRoot: string;
  logPath: string;
  pid: number;
  containerd: ContainerdProcess;
  /** The docker client binary used by docker(). */
  cli: string;
  /**
   * `--root` the shim passes that runtime. dockerd 20.10+ uses `<exec-root>/runtime-runc` as the
   * shim Root for EVERY runtime (moby's defaultV2ShimConfig), so this is `<exec-root>/runtime-runc/moby`
   * whatever the name; runtimes configured together share one state root.
   */
  runtimeRoot(runtime?: string): string;
  /** Removes all containers, stops dockerd and containerd, kills/unmounts leftovers, removes the exec root. */
  stop(opts?: { purge?: boolean }): Promise<void>;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

function daemonJson(d: RigDirs, opts: DockerdOptions): string {
  const config: Record<string, unknown> = {
    runtimes: opts.runtimes,
    ...(opts.defaultRuntime !== undefined ? { 'default-runtime': opts.defaultRuntime } : {}),
    // Otherwise every daemon shares /etc/docker/key.json.
    'deprecated-key-path': path.join(d.lib, 'key.json'),
    // Own cgroup subtree: rig-clean.sh can find and kill this rig's containers by cgroup.
    'cgroup-parent': `/sysrunc-test-${d.name}`,
    ...opts.daemonConfig,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export async function startDockerd(opts: DockerdOptions): Promise<DockerDaemon> {
  const d = rigDirs(opts.name);
  assertNameFree(d);
  await rigClean([d.name]); // leftovers of a crashed run under this name
  const socket = path.join(d.run, 'docker.sock');
  const execRoot = path.join(d.run, 'exec');
  const dataRoot = path.join(d.lib, 'data');
  const logPath = path.join(d.lib, 'dockerd.log');
  const configPath = path.join(d.run, 'daemon.json');
  mkdirSync(execRoot, { recursive: true, mode: 0o711 });
  mkdirSync(dataRoot, { recursive: true, mode: 0o711 });
  mkdirSync(path.join(d.lib, 'docker-config'), { recursive: true });
  writeFileSync(configPath, daemonJson(d, opts));
  guardRig(d.name);

  const fail = async (err: unknown): Promise<never> => {
    await rigClean([d.name]).catch(() => undefined);
    releaseRig(d.name);
    throw err;
  };

  const env = daemonEnv(opts.env);
  const containerd = await launchContainerd(d, { ...(opts.env !== undefined ? { env: opts.env } : {}) }).catch(fail);
  const cli = await dockerCli().catch(fail);

  const args = [
    '--config-file', configPath,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '-H', `unix://${socket}`,
    '--pidfile', path.join(d.run, 'docker.pid'),
    '--containerd', containerd.address,
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--storage-driver', 'overlay2',
  ];
  const log = openSync(logPath, 'w');
  const child = spawn(bins.dockerd, args, { detached: true, stdio: ['ignore', log, log], env });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) return fail(new Error(`could not spawn ${bins.dockerd}`));

  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  try {
    await waitUntil(
      `dockerd (${d.name}) API on ${socket}`,
      async () => {
        if (!pidAlive(pid)) throw new Error(`dockerd (${d.name}) exited during startup`);
        return ping(socket);
      },
      timeoutMs,
      50,
    );
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const tail = logTail(logPath);
    return fail(new Error(`${msg}\n--- tail of ${logPath} ---\n${tail}`));
  }

  const clientEnv: Record<string, string | undefined> = {
    ...daemonEnv(),
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: path.join(d.lib, 'docker-config'), // keep the client off /root/.docker
    DOCKER_CONTEXT: undefined,
    DOCKER_TLS_VERIFY: undefined,
    DOCKER_CERT_PATH: undefined,
  };
  const docker = (a: string[], o?: ExecOptions): Promise<ExecResult> => execTool(cli, a, clientEnv, o);

  const version = await docker(['version', '--format', '{{.Server.Version}}'], { reject: false, timeoutMs: 30_000 });
  if (version.exitCode !== 0) {
    return fail(new Error(`${cli} version against ${socket} failed: ${version.stderr}\n--- tail of ${logPath} ---\n${logTail(logPath)}`));
  }

  let stopped = false;
  return {
    name: d.name,
    socket,
    host: `unix://${socket}`,
    dataRoot,
    execRoot,
    logPath,
    pid,
    containerd,
    cli,
    docker,
    runtimeRoot: () => path.join(execRoot, 'runtime-runc', 'moby'),
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      if (pidAlive(pid)) {
        const ps = await docker(['ps', '-aq'], { reject: false, timeoutMs: 30_000 });
        const ids = ps.stdout.split('\n').filter((s) => s !== '');
        if (ps.exitCode === 0 && ids.length > 0) {
          await docker(['rm', '-f', ...ids], { reject: false, timeoutMs: 60_000 });
        }
      }
      await terminate(pid, 20_000);
      await terminate(containerd.pid, 10_000);
      await rigClean([d.name], o);
      releaseRig(d.name);
    },
  };
}
