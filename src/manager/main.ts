// sysrunc-mgr: the daemon that owns sysrunc's shared state (subid allocations, records of host
// actions per container) and carries out host actions for the shim.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { OwnershipSetting } from './ownership/decide.ts';
import { pino } from 'pino';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { startManager, ManagerStartError } from './daemon.ts';
import { MAX_SIZE_FACTOR } from './subid-bound.ts';
import { DEFAULT_SUBID_SIZE, MAX_SUBID_SIZE } from './subid-alloc.ts';
import { INTERNAL_CHOWN_FLAG, runInternalChown } from './ownership/chown-child.ts';

// The manager runs its big chowns in a child of itself (ownership/chown-child.ts).
if (process.argv[2] === INTERNAL_CHOWN_FLAG) runInternalChown(process.argv[3]);

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n > MAX_SUBID_SIZE) throw new InvalidArgumentError(`not an integer in 1..${MAX_SUBID_SIZE}`);
  return n;
}

const program = new Command('sysrunc-mgr')
  .description('sysrunc manager: subid allocation and host actions for system containers')
  .version(SYSRUNC_VERSION)
  .option('--socket <path>', 'unix socket to listen on', process.env.SYSRUNC_MGR_SOCKET ?? '/run/sysrunc/mgr.sock')
  .option('--state-dir <dir>', 'persistent state', '/var/lib/sysrunc')
  .option('--run-dir <dir>', 'per-container mount directories', '/run/sysrunc')
  .addOption(new Option('--subid-mode <mode>', 'exclusive: a range per container; common: one shared range').choices(['exclusive', 'common']).default('exclusive'))
  .option('--subid-size <n>', 'ids per container unless an annotation says otherwise', positiveInt, DEFAULT_SUBID_SIZE)
  .option('--max-subid-size <n>', `the most ids one container may ask for, from any source (default: --subid-size x ${MAX_SIZE_FACTOR})`, positiveInt)
  .option('--subuid-file <path>', 'subordinate uid file', '/etc/subuid')
  .option('--subgid-file <path>', 'subordinate gid file', '/etc/subgid')
  .option('--sweep-interval <ms>', 'how often removed containers are looked for (their store volumes then go)', positiveInt, 30_000)
  .addOption(
    new Option('--ownership <mode>', 'how container files get their ownership: auto picks idmap > shiftfs > clone (overlay) / chown (directory); a container\'s own setting wins')
      .choices(['auto', 'idmap', 'shiftfs', 'clone', 'chown'])
      .default('auto'),
  )
  .addOption(new Option('--lxcfs <on|off>', "run sysrunc's own lxcfs for the containers' /proc figures").choices(['on', 'off']).default('on'))
  .option('--lxcfs-binary <path>', 'the lxcfs executable', 'lxcfs')
  .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
  .action(async (opts: { socket: string; stateDir: string; runDir: string; subidMode: 'exclusive' | 'common'; subidSize: number; maxSubidSize?: number; subuidFile: string; subgidFile: string; logLevel: string; sweepInterval: number; ownership: OwnershipSetting; lxcfs: 'on' | 'off'; lxcfsBinary: string }) => {
    const log = pino({ level: opts.logLevel, base: { pid: process.pid } }, pino.destination(2));
    let manager;
    try {
      manager = await startManager(
        { ...opts, ownershipDefault: opts.ownership, lxcfs: { enabled: opts.lxcfs === 'on', binary: opts.lxcfsBinary }, ...(process.argv[1] === undefined ? {} : { entryPoint: process.argv[1] }), passwdFile: '/etc/passwd', groupFile: '/etc/group', sweepIntervalMs: opts.sweepInterval },
        log,
      );
    } catch (err) {
      const msg = err instanceof ManagerStartError ? err.message : err instanceof Error ? err.message : String(err);
      log.error(msg);
      process.stderr.write(`sysrunc-mgr: ${msg}\n`);
      process.exit(1);
    }
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down; containers keep running, their records and volumes are kept');
      void manager.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
