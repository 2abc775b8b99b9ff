// sysrunc-ctl: the command line of sysrunc's services. This branch registers the depot's commands
// only; the tenant service's commands join here (registerTenantCommands) when the branches merge.
import { Command } from 'commander';
import { oneLine } from '../errors.ts';
import { SYSRUNC_VERSION } from '../version.ts';
import { registerDepotCommands } from './depot-commands.ts';

const program = new Command('sysrunc-ctl').description('drive sysrunc\'s services: depot containers and their processes').version(SYSRUNC_VERSION);
registerDepotCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`sysrunc-ctl: ${oneLine(err)}\n`);
  process.exit(1);
}
