// A private containerd: own root/state/sockets under the rig dirs, never /run/containerd's socket.
// Used on its own (ctr + runc v2 shim tests) and underneath every private dockerd.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execTool, type ExecOptions, type ExecResult } from './exec.ts';
import { pidAlive, readPidFile, terminate, waitUntil } from './proc.ts';
import { bins, daemonEnv, rigDirs, type RigDirs } from './paths.ts';
import { guardRig, releaseRig, rigClean } from './safety.ts';

export interface ContainerdProcess {
  pid: number;
  /** gRPC socket path (what `ctr --address` and `dockerd --containerd` take). */
  address: string;
  root: string;
  state: string;
  configPath: string;
  logPath: string;
}

/** The CRI plugin, enabled: what a kubelet would talk to (test/rig/cri.ts). */
export interface CriOptions {
  /** CNI config dir (the rig writes a conflist there) and plugin binaries (Debian: /usr/lib/cni). */
  readonly cniConfDir: string;
  readonly cniBinDir: string;
  /** The pod sandbox image, already in (or imported into) the k8s.io namespace. */
  readonly sandboxImage: string;
  /** Runtime handlers besides "runc": name -> the runc-compatible binary the runc v2 shim calls. */
  readonly handlers: Readonly<Record<string, string>>;
  /** Per handler, the container annotations CRI passes on to the runtime (`container_annotations`, e.g. "io.sysrunc.*"). */
  readonly containerAnnotations?: Readonly<Record<string, readonly string[]>>;
}

export interface LaunchOptions {
  /** Enables the CRI plugin with these settings (default: disabled). */
  cri?: CriOptions;
  /** Put into the CRI runc runtime options (BinaryName). ctr ignores it: see ContainerdDaemon.run. */
  runtimeBinary?: string;
  /** Extra environment; containerd passes its environment on to shims and so to the runtime. */
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /**
   * Given the config the rig would run on, returns the file containerd is to run on instead (which
   * must keep the rig's root, state and addresses) and an argv prefix to start it with (nsenter
   * into a mount namespace, say): a node's own config, as an installer left it.
   */
  prepare?: (rigConfig: string) => Promise<{ readonly configFile: string; readonly wrapper?: readonly string[] }>;
}

export function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function criToml(d: RigDirs, cri: CriOptions): string[] {
  const q = (s: string): string => JSON.stringify(s);
  const plugin = 'plugins."io.containerd.grpc.v1.cri"';
  const handler = (name: string, binary: string | undefined): string[] => [
    `[${plugin}.containerd.runtimes.${name}]`,
    '  runtime_type = "io.containerd.runc.v2"',
    ...(cri.containerAnnotations?.[name] === undefined ? [] : [`  container_annotations = [${cri.containerAnnotations[name].map(q).join(', ')}]`]),
    `[${plugin}.containerd.runtimes.${name}.options]`,
    ...(binary === undefined ? [] : [`  BinaryName = ${q(binary)}`]),
    `  Root = ${q(path.join(d.run, 'runc'))}`,
  ];
  return [
    `[${plugin}]`,
    `  sandbox_image = ${q(cri.sandboxImage)}`,
    // Streaming (exec/attach/port-forward URLs) on loopback only, any free port.
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    // The pod sandbox asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE (not in this
    // machine's bounding set): clamped to containerd's own instead.
    '  restrict_oom_score_adj = true',
    `[${plugin}.cni]`,
    `  bin_dir = ${q(cri.cniBinDir)}`,
    `  conf_dir = ${q(cri.cniConfDir)}`,
    `[${plugin}.containerd]`,
    '  default_runtime_name = "runc"',
    '  snapshotter = "overlayfs"',
    ...handler('runc', undefined),
    ...Object.entries(cri.handlers).flatMap(([name, binary]) => handler(name, binary)),
  ];
}

function containerdToml(d: RigDirs, p: Omit<ContainerdProcess, 'pid' | 'logPath' | 'configPath'>, runtimeBinary?: string, cri?: CriOptions): string {
  const q = (s: string): string => JSON.stringify(s); // JSON strings are valid TOML basic strings
  const runcOptions = [
    ...(runtimeBinary !== undefined ? [`  BinaryName = ${q(runtimeBinary)}`] : []),
    `  Root = ${q(path.join(d.run, 'runc'))}`,
  ];
  return [
    'version = 2',
    `root = ${q(p.root)}`,
    `state = ${q(p.state)}`,
    // CRI wants CNI, a streaming port and more: only for the rigs that ask for it.
    ...(cri === undefined ? ['disabled_plugins = ["io.containerd.grpc.v1.cri"]'] : []),
    '[grpc]',
    `  address = ${q(p.address)}`,
    '[ttrpc]',
    `  address = ${q(`${p.address}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(p.root, 'opt'))}`,
    ...(cri !== undefined
      ? criToml(d, cri)
      : [
          '[plugins."io.containerd.grpc.v1.cri".containerd]',
          '  default_runtime_name = "runc"',
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
          '  runtime_type = "io.containerd.runc.v2"',
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
          ...runcOptions,
        ]),
    '',
  ].join('\n');
}

/** Throws if a daemon of this rig name is alive; the name is taken. */
export function assertNameFree(d: RigDirs): void {
  for (const f of ['containerd.pid', 'docker.pid']) {
    const pid = readPidFile(path.join(d.run, f));
    if (pid !== undefined && pidAlive(pid)) {
      throw new Error(`rig name ${d.name} is in use (${f}: pid ${pid}); pick a unique name or run scripts/rig-clean.sh ${d.name}`);
    }
  }
}

/** Starts containerd for rig dirs `d`; the caller owns the safety net and stopping. */
export async function launchContainerd(d: RigDirs, opts: LaunchOptions = {}): Promise<ContainerdProcess> {
  const p = {
    address: path.join(d.run, 'containerd.sock'),
    root: path.join(d.lib, 'containerd'),
    state: path.join(d.run, 'containerd'),
    configPath: path.join(d.run, 'containerd.toml'),
    logPath: path.join(d.lib, 'containerd.log'),
  };
  mkdirSync(p.root, { recursive: true, mode: 0o711 });
  writeFileSync(p.configPath, containerdToml(d, p, opts.runtimeBinary, opts.cri));
  const prepared = opts.prepare === undefined ? undefined : await opts.prepare(readFileSync(p.configPath, 'utf8'));
  if (prepared !== undefined) p.configPath = prepared.configFile;
  const argv = [...(prepared?.wrapper ?? []), bins.containerd, '--config', p.configPath];
  const log = openSync(p.logPath, 'w');
  const child = spawn(argv[0] ?? bins.containerd, argv.slice(1), {
    detached: true, // keep terminal SIGINT away; the safety net decides when it dies
    stdio: ['ignore', log, log],
    env: daemonEnv(opts.env),
  });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${bins.containerd}`);
  writeFileSync(path.join(d.run, 'containerd.pid'), String(pid));
  const ping = async (): Promise<boolean> => {
    if (!pidAlive(pid)) {
      throw new Error(`containerd (${d.name}) exited during startup; log tail:\n${logTail(p.logPath)}`);
    }
    const r = await execTool(bins.ctr, ['--address', p.address, 'version'], process.env, { reject: false, timeoutMs: 5000 });
    return r.exitCode === 0;
  };
  try {
    await waitUntil(`containerd (${d.name}) to answer on ${p.address}`, ping, opts.startTimeoutMs ?? 30_000, 50);
  } catch (err) {
    await terminate(pid, 2000);
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(msg.includes('log tail') ? msg : `${msg}; containerd log tail:\n${logTail(p.logPath)}`);
  }
  return { pid, ...p };
}

export interface ContainerdOptions extends LaunchOptions {
  /** Unique among live rigs; part of socket paths ([a-z0-9][a-z0-9_.-]{0,39}). */
  name: string;
  /** containerd namespace for ctr calls (default "sysrunc-test"). */
  namespace?: string;
}

export interface CtrRunOptions extends ExecOptions {
  /** Extra `ctr run` flags, placed before the image. */
  flags?: string[];
  /** Runtime binary for this run (default: the daemon's runtimeBinary, else the shim's default "runc"). */
  runtimeBinary?: string;
}

export interface ContainerdDaemon extends ContainerdProcess {
  name: string;
  namespace: string;
  /** runc --root the shim passes the runtime in ctr runs: `<runcRoot>/<namespace>`. */
  runcRoot: string;
  runtimeBinary?: string;
  /** `ctr --address <addr> --namespace <ns> ...args`. */
  ctr(args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /**
   * `ctr run --rm --runtime io.containerd.runc.v2` with the rig's runc binary/root, fifo dir and
   * cgroup, so nothing lands in /run/containerd's defaults.
   */
  run(image: string, id: string, args: string[], opts?: CtrRunOptions): Promise<ExecResult>;
  stop(opts?: { purge?: boolean }): Promise<void>;
}

export async function startContainerd(opts: ContainerdOptions): Promise<ContainerdDaemon> {
  const d = rigDirs(opts.name);
  assertNameFree(d);
  await rigClean([d.name]); // leftovers of a crashed run under this name
  mkdirSync(d.run, { recursive: true, mode: 0o711 });
  guardRig(d.name);
  let proc: ContainerdProcess;
  try {
    proc = await launchContainerd(d, opts);
  } catch (err) {
    await rigClean([d.name]).catch(() => undefined);
    releaseRig(d.name);
    throw err;
  }
  const namespace = opts.namespace ?? 'sysrunc-test';
  const runcRoot = path.join(d.run, 'runc');
  const env = daemonEnv(opts.env);
  const ctr = (args: string[], o?: ExecOptions): Promise<ExecResult> =>
    execTool(bins.ctr, ['--address', proc.address, '--namespace', namespace, ...args], env, o);
  let stopped = false;
  return {
    ...proc,
    name: d.name,
    namespace,
    runcRoot,
    ...(opts.runtimeBinary !== undefined ? { runtimeBinary: opts.runtimeBinary } : {}),
    ctr,
    run(image, id, args, o = {}) {
      const binary = o.runtimeBinary ?? opts.runtimeBinary;
      const flags = [
        'run', '--rm', '--runtime', 'io.containerd.runc.v2',
        ...(binary !== undefined ? ['--runc-binary', binary] : []),
        '--runc-root', runcRoot,
        '--fifo-dir', path.join(d.run, 'fifo'),
        '--cgroup', `/sysrunc-test-${d.name}/${id}`,
        ...(o.flags ?? []),
        image, id, ...args,
      ];
      return ctr(flags, o);
    },
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      await terminate(proc.pid, 10_000);
      await rigClean([d.name], o);
      releaseRig(d.name);
    },
  };
}
