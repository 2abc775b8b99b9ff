// sysrunc-ctl: the command line of sysrunc's services: the depot's commands (under `depot`), the
// tenant service's (under `tenant`) and the manager's status.
import { Command } from 'commander';
import { oneLine } from '../common/errors.ts';
import { SYSRUNC_VERSION } from '../common/version.ts';
import { registerDepotCommands } from './depot-commands.ts';
import { registerTenantCommands, TENANT_COMMAND_TAILS } from './tenant-commands.ts';
import { markCommandStart } from './command-line.ts';
import { registerRemovableCommand } from './removable-command.ts';
import { registerInstallCommands } from './install-commands.ts';

const program = new Command('sysrunc-ctl').description('drive sysrunc\'s services: depot containers and their processes, tenant containers, the manager\'s status').version(SYSRUNC_VERSION);
registerDepotCommands(program);
registerTenantCommands(program);
registerRemovableCommand(program);
registerInstallCommands(program);

try {
  await program.parseAsync(markCommandStart(program, process.argv, TENANT_COMMAND_TAILS));
} catch (err) {
  process.stderr.write(`sysrunc-ctl: ${oneLine(err)}\n`);
  process.exit(1);
}
