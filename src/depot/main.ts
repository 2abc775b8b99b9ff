// sysrunc-depotd: long-lived containers in a depot directory, their processes tracked by
// supervisors that outlive it. It keeps no state of its own: kill it, start it again, and it
// answers for every container and process from the depot.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { pino } from 'pino';
import { DEFAULT_DEPOT_SOCKET } from '../depot-api/client.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { listenOnSocket } from '../rpc/listen.ts';
import { installTop } from '../common/self-path.ts';
import { Depot } from './layout.ts';
import { createDepotServer } from './server.ts';

// dist/sysrunc-depotd.mjs (or the compiled dist/sysrunc-depotd): the install's top is one level up.
const top = installTop(import.meta.url);

interface Options {
  socket: string;
  depot: string;
  runcRoot: string;
  sysrunc: string;
  init: string;
  supervisor: string;
  maxOutputBytes: number;
  logLevel: string;
}

/** Default cap of one process's kept output: its files are on /run (tmpfs, memory). */
const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;
const MIN_MAX_OUTPUT_BYTES = 4096;

function outputBytes(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < MIN_MAX_OUTPUT_BYTES) {
    process.stderr.write(`sysrunc-depotd: --max-output-bytes ${value}: not a whole number of bytes of at least ${MIN_MAX_OUTPUT_BYTES}\n`);
    process.exit(2);
  }
  return n;
}

const program = new Command('sysrunc-depotd')
  .description('sysrunc depot daemon: long-lived system containers with tracked processes')
  .version(SYSRUNC_VERSION)
  .option('--socket <path>', 'unix socket to listen on (mode 0600, root only)', process.env['SYSRUNC_DEPOT_SOCKET'] ?? DEFAULT_DEPOT_SOCKET)
  .option('--depot <dir>', 'the depot: one directory per container, the source of truth', '/run/sysrunc-depot/depot')
  .option('--runc-root <dir>', 'runc --root of the depot\'s containers', '/run/sysrunc-depot/runc')
  .option('--sysrunc <path>', 'the runtime every create and exec goes through', path.join(top, 'bin', 'sysrunc'))
  .option('--init <path>', 'the keep-alive init (static binary)', path.join(top, 'dist', 'sysrunc-depot-init'))
  .option('--supervisor <path>', 'the per-process supervisor (static binary)', path.join(top, 'dist', 'sysrunc-depot-supervise'))
  .option('--max-output-bytes <n>', 'output each process keeps on disk, stdout and stderr together; past it the oldest is dropped', outputBytes, DEFAULT_MAX_OUTPUT_BYTES)
  .option('--log-level <level>', 'debug, info, warn or error', 'info')
  .action(async (opts: Options) => {
    const log = pino({ level: opts.logLevel, base: { pid: process.pid } }, pino.destination(2));
    for (const [what, file] of [['--init', opts.init], ['--supervisor', opts.supervisor], ['--sysrunc', opts.sysrunc]] as const) {
      if (!existsSync(file)) {
        process.stderr.write(`sysrunc-depotd: ${what} ${file} does not exist (run 'npm run build': it compiles the init and the supervisor with cc)\n`);
        process.exit(1);
      }
    }
    for (const dir of [opts.depot, opts.runcRoot, path.dirname(opts.socket)]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const rt = {
      depot: new Depot(path.resolve(opts.depot)),
      sysrunc: path.resolve(opts.sysrunc),
      runcRoot: path.resolve(opts.runcRoot),
      init: path.resolve(opts.init),
      supervisor: path.resolve(opts.supervisor),
      maxOutputBytes: opts.maxOutputBytes,
      env: process.env,
    };
    // A socket left by a daemon killed with -9 is removed; one a live daemon answers on is not taken.
    const server = createDepotServer(rt, log);
    try {
      await listenOnSocket(server, opts.socket, 'sysrunc-depotd');
    } catch (err) {
      process.stderr.write(`sysrunc-depotd: listen ${opts.socket}: ${(err as Error).message}\n`);
      process.exit(1);
    }
    log.info({ socket: opts.socket, depot: rt.depot.root, containers: rt.depot.containers().length }, 'listening');
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down; containers and their processes keep running');
      server.close();
      rmSync(opts.socket, { force: true });
      process.exit(0);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
