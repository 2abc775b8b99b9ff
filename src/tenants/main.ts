// sysrunc-tenantd: the tenant container service. A stateless proxy to containerd (gRPC, the
// tenant's containerd namespace on every call) whose containers all run through sysrunc: kill it,
// start it again, and it answers for every container from containerd and restarts what exited.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { DEFAULT_TENANTS_SOCKET } from '../tenants-api/client.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { listenOnSocket } from '../rpc/listen.ts';
import { installTop } from '../common/self-path.ts';
import { ContainerdClient } from './containerd-client.ts';
import type { TenantRuntime } from './runtime.ts';
import { createTenantServer } from './server.ts';
import { Supervisor } from './supervisor.ts';

// dist/sysrunc-tenantd.mjs (or the compiled dist/sysrunc-tenantd): the install's top is one level up.
const top = installTop(import.meta.url);

interface Options {
  socket: string;
  containerd: string;
  stateDir: string;
  runcRoot: string;
  sysrunc: string;
  tini: string;
  cgroupParent: string;
  snapshotter: string;
  netnsDir: string;
  maxRestarts: string;
  restartDelay: string;
  logLevel: string;
}

const program = new Command('sysrunc-tenantd')
  .description('sysrunc tenant container service: containers over containerd, every tenant user-namespace isolated')
  .version(SYSRUNC_VERSION)
  .option('--socket <path>', 'unix socket to listen on (mode 0600, root only)', process.env['SYSRUNC_TENANTS_SOCKET'] ?? DEFAULT_TENANTS_SOCKET)
  .option('--containerd <path>', 'containerd\'s gRPC socket', '/run/containerd/containerd.sock')
  .option('--state-dir <dir>', 'container logs and exec output', '/var/lib/sysrunc-tenants')
  .option('--runc-root <dir>', 'runc --root the shim gives sysrunc', '/run/sysrunc-tenants/runc')
  .option('--sysrunc <path>', 'the runtime (runc v2 shim BinaryName)', path.join(top, 'bin', 'sysrunc'))
  .option('--tini <path>', 'the init of interactive containers (static)', '/usr/bin/tini-static')
  .option('--cgroup-parent <name>', 'cgroup parent of all tenant containers', 'sysrunc-tenants')
  .option('--snapshotter <name>', 'snapshotter images are unpacked with', 'overlayfs')
  .option('--netns-dir <dir>', 'where named network namespaces are', '/var/run/netns')
  .option('--max-restarts <n>', 'restarts after unexpected exits before a container is failed', '3')
  .option('--restart-delay <ms>', 'first back-off before a restart (doubles each time, at most 30 s)', '500')
  .option('--log-level <level>', 'debug, info, warn or error', 'info')
  .action(async (opts: Options) => {
    const log = pino({ level: opts.logLevel, base: { pid: process.pid } }, pino.destination(2));
    for (const [what, file] of [['--sysrunc', opts.sysrunc], ['--containerd', opts.containerd]] as const) {
      if (!existsSync(file)) {
        process.stderr.write(`sysrunc-tenantd: ${what} ${file} does not exist\n`);
        process.exit(1);
      }
    }
    for (const dir of [opts.stateDir, opts.runcRoot, path.dirname(opts.socket)]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ctrd = new ContainerdClient(opts.containerd);
    const rt: TenantRuntime = {
      ctrd,
      sysrunc: path.resolve(opts.sysrunc),
      runcRoot: path.resolve(opts.runcRoot),
      stateDir: path.resolve(opts.stateDir),
      cgroupParent: opts.cgroupParent,
      tini: opts.tini,
      snapshotter: opts.snapshotter,
      netnsDir: opts.netnsDir,
      managerSocket: process.env['SYSRUNC_MGR_SOCKET'],
      restart: { maxRestarts: Number(opts.maxRestarts), baseDelayMs: Number(opts.restartDelay), maxDelayMs: 30_000 },
      log,
      busy: new Set(),
    };
    const supervisor = new Supervisor(rt);
    const server = createTenantServer(rt, opts.containerd, log);
    try {
      await listenOnSocket(server, opts.socket, 'sysrunc-tenantd');
    } catch (err) {
      process.stderr.write(`sysrunc-tenantd: listen ${opts.socket}: ${(err as Error).message}\n`);
      process.exit(1);
    }
    log.info({ socket: opts.socket, containerd: opts.containerd }, 'listening');
    void supervisor.start();
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down; containers keep running');
      supervisor.stop();
      server.close();
      rmSync(opts.socket, { force: true });
      ctrd.close();
      process.exit(0);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
