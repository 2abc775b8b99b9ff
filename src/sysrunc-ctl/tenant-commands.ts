// sysrunc-ctl's tenant commands (under `tenant`, since the depot's list and exec are top-level):
// run, inspect, delete, list, ns list|create, exec, logs; and the top-level `status`, what the
// manager holds. Tenant commands talk to sysrunc-tenantd (--socket or SYSRUNC_TENANTS_SOCKET).
import { Command, InvalidArgumentError, Option } from 'commander';
import { CPU_OPTION, MEMORY_OPTION, positiveNumber } from './limit-options.ts';
import { TenantsClient } from '../tenants-api/client.ts';
import { TenantError, type Container, type MountInfo } from '../tenants-api/v1.ts';
import { printStatus } from './status-command.ts';
import type { CommandTail } from './command-line.ts';

const socketOption = (): Option => new Option('--socket <path>', 'sysrunc-tenantd socket').env('SYSRUNC_TENANTS_SOCKET');

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** --mount type=bind,source=/a,target=/b,options=ro+nosuid (type defaults to bind). */
export function parseMountFlag(value: string, previous: MountInfo[] = []): MountInfo[] {
  const fields = new Map(value.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const source = fields.get('source') ?? fields.get('src');
  const target = fields.get('target') ?? fields.get('dst');
  if (source === undefined || target === undefined) throw new InvalidArgumentError(`${value}: expected type=bind,source=/host,target=/in/container[,options=ro+nosuid]`);
  const options = fields.get('options');
  return [...previous, { source, target, type: fields.get('type') ?? 'bind', ...(options !== undefined ? { options: options.split('+') } : {}) }];
}

async function withClient<T>(socket: string | undefined, fn: (c: TenantsClient) => Promise<T>): Promise<T> {
  const client = await TenantsClient.connect(socket);
  try {
    return await fn(client);
  } catch (err) {
    // The code first: scripts match on it.
    if (err instanceof TenantError) throw new Error(`${err.code}: ${err.message}`);
    throw err;
  } finally {
    client.close();
  }
}

interface RunOptions {
  rootfs?: string;
  image?: string;
  env?: string[];
  workdir?: string;
  netns?: string;
  mount?: MountInfo[];
  interactive?: boolean;
  cpu?: number;
  memory?: number;
  shutdownTimeout?: number;
  socket?: string;
}

/** Commands whose trailing words are a command to run (see command-line.ts). */
export const TENANT_COMMAND_TAILS: readonly CommandTail[] = [
  { path: ['tenant', 'run'], fixedOperands: 2 },
  { path: ['tenant', 'exec'], fixedOperands: 2 },
];

export function registerTenantCommands(program: Command): void {
  const tenant = program.command('tenant').description('the tenant container service (sysrunc-tenantd): containers per containerd namespace');

  const ns = tenant.command('ns').description('tenants (containerd namespaces)');
  const listNS = async (o: { socket?: string }): Promise<void> => {
    const { namespaces } = await withClient(o.socket, (c) => c.call('listNS', {}));
    for (const n of namespaces) process.stdout.write(`${n}\n`);
  };
  ns.command('list').addOption(socketOption()).action(listNS);
  tenant.command('list-ns').description('the same as ns list (the seed\'s ListNS)').addOption(socketOption()).action(listNS);
  ns.command('create')
    .argument('<ns>')
    .addOption(socketOption())
    .action(async (name: string, o: { socket?: string }) => {
      await withClient(o.socket, (c) => c.call('createNS', { ns: name }));
    });

  tenant
    .command('run')
    .description('create and start a container; prints its id')
    .argument('<ns>')
    .argument('<name>')
    .argument('<entrypoint...>')
    .option('--rootfs <dir>', 'root filesystem on the host (used in place)')
    .option('--image <ref>', 'image in the tenant\'s content store')
    .option('-e, --env <KEY=value>', 'environment (repeatable)', collect)
    .option('-w, --workdir <dir>')
    .option('--netns <name>', 'named network namespace (/var/run/netns/<name>) to join')
    .option('--mount <spec>', 'type=bind,source=/a,target=/b[,options=ro+nosuid] (repeatable)', parseMountFlag)
    .option('-i, --interactive', 'tini as PID 1')
    .option(CPU_OPTION.flags, CPU_OPTION.description, CPU_OPTION.parse)
    .option(MEMORY_OPTION.flags, MEMORY_OPTION.description, MEMORY_OPTION.parse)
    .option('--shutdown-timeout <s>', 'seconds from SIGTERM to SIGKILL on delete', positiveNumber)
    .addOption(socketOption())
    .action(async (nsName: string, name: string, entrypoint: string[], o: RunOptions) => {
      const container: Container = {
        name,
        entrypoint,
        ...(o.rootfs !== undefined ? { rootfs: o.rootfs } : {}),
        ...(o.image !== undefined ? { image: o.image } : {}),
        ...(o.env !== undefined ? { env: o.env } : {}),
        ...(o.workdir !== undefined ? { workingDir: o.workdir } : {}),
        ...(o.netns !== undefined ? { network: { namespace: o.netns } } : {}),
        ...(o.mount !== undefined ? { mounts: o.mount } : {}),
        interactive: o.interactive ?? false,
        ...(o.cpu !== undefined ? { cpu: o.cpu } : {}),
        ...(o.memory !== undefined ? { memory: o.memory } : {}),
        ...(o.shutdownTimeout !== undefined ? { shutdownTimeout: o.shutdownTimeout } : {}),
      };
      const { id } = await withClient(o.socket, (c) => c.call('run', { ns: nsName, container }));
      process.stdout.write(`${id}\n`);
    });

  tenant
    .command('inspect')
    .description('the container as Run was given it, and its state (JSON)')
    .argument('<ns>')
    .argument('<id>')
    .addOption(socketOption())
    .action(async (nsName: string, id: string, o: { socket?: string }) => {
      const r = await withClient(o.socket, (c) => c.call('inspect', { ns: nsName, id }));
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    });

  tenant
    .command('delete')
    .description('stop (SIGTERM, the shutdown timeout, SIGKILL) and remove a container')
    .argument('<ns>')
    .argument('<id>')
    .addOption(socketOption())
    .action(async (nsName: string, id: string, o: { socket?: string }) => {
      await withClient(o.socket, (c) => c.call('delete', { ns: nsName, id }));
    });

  tenant
    .command('list')
    .description('the tenant\'s containers')
    .argument('<ns>')
    .option('--json')
    .addOption(socketOption())
    .action(async (nsName: string, o: { json?: boolean; socket?: string }) => {
      const { containers } = await withClient(o.socket, (c) => c.call('list', { ns: nsName }));
      if (o.json) return void process.stdout.write(`${JSON.stringify(containers, null, 2)}\n`);
      for (const c of containers) process.stdout.write(`${c.id}\t${c.status}\t${c.pid}\trestarts=${c.restarts}${c.failed !== undefined ? `\tfailed: ${c.failed}` : ''}\n`);
    });

  tenant
    .command('exec')
    .description('run a command in a container; its output and exit code are ours')
    .argument('<ns>')
    .argument('<id>')
    .argument('<command...>')
    .option('--timeout <s>', 'kill it after this many seconds', positiveNumber)
    .addOption(socketOption())
    .action(async (nsName: string, id: string, command: string[], o: { timeout?: number; socket?: string }) => {
      const r = await withClient(o.socket, (c) => c.call('exec', { ns: nsName, id, args: command, ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) }));
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      process.exitCode = r.exitCode;
    });

  tenant
    .command('logs')
    .description('the entrypoint\'s output')
    .argument('<ns>')
    .argument('<id>')
    .option('--tail <n>', 'last n lines', (v) => Math.round(positiveNumber(v)))
    .addOption(socketOption())
    .action(async (nsName: string, id: string, o: { tail?: number; socket?: string }) => {
      const r = await withClient(o.socket, (c) => c.call('logs', { ns: nsName, id, ...(o.tail !== undefined ? { tail: o.tail } : {}) }));
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
    });

  program
    .command('status')
    .description('what sysrunc-mgr holds: subid ranges used and free, containers with their range, ownership and mounts, store volumes')
    .option('--json')
    .addOption(new Option('--manager-socket <path>', 'sysrunc-mgr socket').env('SYSRUNC_MGR_SOCKET').default('/run/sysrunc/mgr.sock'))
    .action(async (o: { json?: boolean; managerSocket: string }) => {
      await printStatus(o.managerSocket, o.json ?? false);
    });
}
