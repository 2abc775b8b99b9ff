// sysrunc-ctl's depot commands (`sysrunc-ctl depot ...`): create/destroy a depot container, exec (-d detached, -t tty, -i
// stdin), attach, wait, signal, ps, forget, list. Every command talks to sysrunc-depotd through
// depot-api/client.ts (socket: --socket, or SYSRUNC_DEPOT_SOCKET).
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DepotClient } from '../depot-api/client.ts';
import { CPU_OPTION, MEMORY_OPTION } from './limit-options.ts';
import { DepotError, type ProcessSpec } from '../depot-api/v1.ts';

const socketOption = (): Option => new Option('--socket <path>', 'sysrunc-depotd socket').env('SYSRUNC_DEPOT_SOCKET');

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function signalNumber(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
  const n = (constants.signals as Record<string, number | undefined>)[name];
  if (n === undefined) throw new InvalidArgumentError(`unknown signal ${value}`);
  return n;
}

function parseMount(value: string, previous: { source: string; destination: string; readOnly: boolean }[] = []): { source: string; destination: string; readOnly: boolean }[] {
  const [source, destination, mode] = value.split(':');
  if (source === undefined || destination === undefined || !source.startsWith('/') || !destination.startsWith('/') || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new InvalidArgumentError(`${value}: expected /host/path:/container/path[:ro|rw]`);
  }
  return [...previous, { source, destination, readOnly: mode === 'ro' }];
}

async function withClient<T>(socket: string | undefined, fn: (c: DepotClient) => Promise<T>): Promise<T> {
  const client = await DepotClient.connect(socket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** How long an attached client waits for a restarting daemon before it gives up. */
const REATTACH_WAIT_MS = 30_000;

/**
 * Streams the process's output here, forwards stdin (and the window size) there; resolves with its
 * exit code. If the daemon goes away meanwhile, it reconnects and resumes at the offsets it has.
 */
async function attachHere(first: DepotClient, container: string, process_: string, o: { stdin: boolean; tty: boolean }): Promise<number> {
  const ref = { container, process: process_ };
  let client = first;
  let sending = Promise.resolve();
  const queue = (fn: () => Promise<unknown>): void => {
    sending = sending.then(fn).then(
      () => undefined,
      () => undefined, // the process ended: nothing more to send
    );
  };
  const raw = o.tty && process.stdin.isTTY;
  // The container's pty already turns \n into \r\n; Node's raw mode keeps output processing, so
  // the local terminal would add a second \r: switch that off too, as a raw terminal has it.
  if (raw) {
    process.stdin.setRawMode(true);
    spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
  }
  const onResize = (): void => queue(() => client.call('resize', { ...ref, rows: process.stdout.rows, cols: process.stdout.columns }));
  if (o.tty && process.stdout.isTTY) process.stdout.on('resize', onResize);
  if (o.stdin) {
    process.stdin.on('data', (chunk: Buffer) => queue(() => client.call('stdin', { ...ref, data: chunk.toString('base64') })));
    process.stdin.on('end', () => queue(() => client.call('closeStdin', ref)));
  }
  const offsets = { stdoutOffset: 0, stderrOffset: 0 };
  try {
    for (;;) {
      try {
        const done = await client.attach({ ...ref, ...offsets }, (e) => {
          (e.stream === 'stdout' ? process.stdout : process.stderr).write(Buffer.from(e.data, 'base64'));
          offsets[e.stream === 'stdout' ? 'stdoutOffset' : 'stderrOffset'] = e.offset;
        });
        return done.exitCode;
      } catch (err) {
        if (err instanceof DepotError) throw err;
        // The daemon went away (restart, kill -9): the supervisor kept everything; pick up there.
        if (client !== first) client.close();
        client = await DepotClient.connect(first.socketPath, REATTACH_WAIT_MS);
      }
    }
  } finally {
    if (raw) {
      spawnSync('stty', ['opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
      process.stdin.setRawMode(false);
    }
    process.stdout.off('resize', onResize);
    process.stdin.pause();
    process.stdin.unref?.();
    if (client !== first) client.close();
  }
}

/** Exits with code once stdout and stderr have flushed. */
function exitWith(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

/**
 * `sysrunc-ctl depot <command>`, the shape of `sysrunc-ctl tenant <command>`; and the same commands
 * at the top level, as sysrunc-ctl had them first: hidden from help, one deprecation line on stderr.
 */
export function registerDepotCommands(program: Command): void {
  program.enablePositionalOptions();
  const depot = program.command('depot').description('the depot (sysrunc-depotd): long-lived containers with tracked processes').enablePositionalOptions();
  addDepotCommands((name) => depot.command(name));
  addDepotCommands((name) =>
    program.command(name, { hidden: true }).hook('preAction', () => {
      process.stderr.write(`sysrunc-ctl: '${name}' without 'depot' is deprecated; use 'sysrunc-ctl depot ${name}'\n`);
    }),
  );
}

/** The depot's commands, each made under its parent by `command`. */
function addDepotCommands(command: (name: string) => Command): void {

  command('create')
    .description('create a depot container: sysrunc, the keep-alive init as PID 1')
    .argument('<id>')
    .requiredOption('--rootfs <dir>', 'root filesystem (used in place, never written by the depot)')
    .option('--readonly', 'read-only rootfs')
    .option('--hostname <name>')
    .option('--mount <src:dst[:ro]>', 'bind mount (repeatable)', parseMount)
    .option('--annotation <key=value>', 'config annotation, e.g. io.sysrunc.userns.size=65536 (repeatable)', collect)
    .option(CPU_OPTION.flags, CPU_OPTION.description, CPU_OPTION.parse)
    .option(MEMORY_OPTION.flags, MEMORY_OPTION.description, MEMORY_OPTION.parse)
    .addOption(socketOption())
    .action(async (id: string, o: { rootfs: string; readonly?: boolean; hostname?: string; mount?: { source: string; destination: string; readOnly: boolean }[]; annotation?: string[]; cpu?: number; memory?: number; socket?: string }) => {
      const annotations = Object.fromEntries((o.annotation ?? []).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
      const limits = { ...(o.cpu === undefined ? {} : { cpu: o.cpu }), ...(o.memory === undefined ? {} : { memory: o.memory }) };
      const info = await withClient(o.socket, (c) =>
        c.call('create', { id, rootfs: o.rootfs, readonlyRootfs: o.readonly ?? false, ...(o.hostname ? { hostname: o.hostname } : {}), mounts: o.mount ?? [], annotations, ...limits }),
      );
      process.stdout.write(`${info.id} ${info.pid}\n`);
    });

  command('destroy')
    .description('kill everything in a depot container, delete it and remove its directory')
    .argument('<id>')
    .addOption(socketOption())
    .action(async (id: string, o: { socket?: string }) => {
      await withClient(o.socket, (c) => c.call('destroy', { id }));
    });

  command('list')
    .description('the depot\'s containers')
    .addOption(socketOption())
    .action(async (o: { socket?: string }) => {
      const { containers } = await withClient(o.socket, (c) => c.call('list', {}));
      for (const c of containers) process.stdout.write(`${c.id}\t${c.pid}\t${c.status}\n`);
    });

  command('exec')
    .description('run a process in a depot container; -d prints its id and returns, otherwise it is attached and its exit code is ours')
    .argument('<container>')
    .argument('<command...>')
    .option('-d, --detach', 'start it and print its process id')
    .option('-t, --tty', 'allocate a terminal')
    .option('-i, --interactive', 'forward stdin')
    .option('--id <process>', 'process id (default: generated)')
    .option('-e, --env <KEY=value>', 'environment (repeatable)', collect)
    .option('-w, --cwd <dir>', 'working directory')
    .option('-u, --user <uid[:gid]>', 'container uid and gid (default 0:0, the container\'s root)')
    .addOption(socketOption())
    .passThroughOptions()
    .action(async (container: string, command: string[], o: { detach?: boolean; tty?: boolean; interactive?: boolean; id?: string; env?: string[]; cwd?: string; user?: string; socket?: string }) => {
      const [uid, gid] = (o.user ?? '0').split(':').map(Number);
      const spec: ProcessSpec = {
        args: command,
        env: o.env ?? [],
        tty: o.tty ?? false,
        uid: uid ?? 0,
        gid: gid ?? uid ?? 0,
        ...(o.cwd ? { cwd: o.cwd } : {}),
        ...(o.tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : {}),
      };
      const client = await DepotClient.connect(o.socket);
      try {
        const started = await client.call('exec', { container, ...(o.id ? { process: o.id } : {}), spec });
        if (o.detach) {
          process.stdout.write(`${started.process}\n`);
          return;
        }
        // Not interactive: the process reads end of input, as with docker exec without -i.
        if (!o.interactive && !o.tty) await client.call('closeStdin', { container, process: started.process });
        exitWith(await attachHere(client, container, started.process, { stdin: o.interactive ?? false, tty: o.tty ?? false }));
      } finally {
        client.close();
      }
    });

  command('attach')
    .description('reattach to a process: all its output so far, then the rest; its exit code is ours')
    .argument('<container>')
    .argument('<process>')
    .option('-i, --interactive', 'forward stdin')
    .option('-t, --tty', 'the process has a terminal: raw mode and window size')
    .addOption(socketOption())
    .action(async (container: string, proc: string, o: { interactive?: boolean; tty?: boolean; socket?: string }) => {
      const client = await DepotClient.connect(o.socket);
      try {
        exitWith(await attachHere(client, container, proc, { stdin: o.interactive ?? false, tty: o.tty ?? false }));
      } finally {
        client.close();
      }
    });

  command('wait')
    .description('wait for a process and print its exit code (128+signal when killed); also our exit status')
    .argument('<container>')
    .argument('<process>')
    .addOption(socketOption())
    .action(async (container: string, proc: string, o: { socket?: string }) => {
      const { exitCode } = await withClient(o.socket, (c) => c.call('wait', { container, process: proc }));
      process.stdout.write(`${exitCode}\n`);
      exitWith(exitCode);
    });

  command('signal')
    .description('send a signal (name or number) to a process')
    .argument('<container>')
    .argument('<process>')
    .argument('[signal]', 'e.g. TERM, KILL, 15', 'TERM')
    .addOption(socketOption())
    .action(async (container: string, proc: string, signal: string, o: { socket?: string }) => {
      await withClient(o.socket, (c) => c.call('signal', { container, process: proc, signal: signalNumber(signal) }));
    });

  command('forget')
    .description('remove the record (directory, output, exit code) of an exited process')
    .argument('<container>')
    .argument('<process>')
    .addOption(socketOption())
    .action(async (container: string, proc: string, o: { socket?: string }) => {
      await withClient(o.socket, (c) => c.call('forget', { container, process: proc }));
    });

  command('ps')
    .description('the processes of a depot container, running and exited')
    .argument('<container>')
    .option('--json', 'JSON instead of a table')
    .addOption(socketOption())
    .action(async (container: string, o: { json?: boolean; socket?: string }) => {
      const { processes } = await withClient(o.socket, (c) => c.call('ps', { container }));
      if (o.json) return void process.stdout.write(`${JSON.stringify(processes, null, 2)}\n`);
      process.stdout.write('ID\tPID\tSTATE\tEXIT\tCOMMAND\n');
      for (const p of processes) process.stdout.write(`${p.id}\t${p.pid}\t${p.state}\t${p.exitCode ?? '-'}\t${p.args.join(' ')}\n`);
    });
}
