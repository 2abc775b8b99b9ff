// sysrunc-ctl removable: whether sysrunc can be removed now, for the package's prerm. Exits 1 with
// one line naming the containers that still run with sysrunc (the manager's records), 0 otherwise.
import { Option, type Command } from 'commander';
import { ManagerClient } from '../manager-client/client.ts';

export function registerRemovableCommand(program: Command): void {
  program
    .command('removable')
    .description('exit 1, naming them, while containers run with sysrunc (the package refuses removal then)')
    .addOption(new Option('--manager-socket <path>', 'sysrunc-mgr socket').env('SYSRUNC_MGR_SOCKET').default('/run/sysrunc/mgr.sock'))
    .action(async (o: { managerSocket: string }) => {
      let client: ManagerClient;
      try {
        client = await ManagerClient.connect(o.managerSocket);
      } catch (err) {
        // A dead manager (a stale socket) must not make the package impossible to remove.
        process.stderr.write(`sysrunc: the manager does not answer on ${o.managerSocket} (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): cannot tell whether containers run\n`);
        return;
      }
      let running: string[];
      try {
        running = (await client.call('status', {})).containers.filter((c) => !c.stopped).map((c) => c.id);
      } finally {
        client.close();
      }
      if (running.length === 0) return;
      const names = running.length > 10 ? `${running.slice(0, 10).join(', ')} and ${running.length - 10} more` : running.join(', ');
      process.stderr.write(`sysrunc: ${running.length} container${running.length === 1 ? '' : 's'} still run with sysrunc (${names}): stop and remove them first\n`);
      process.exitCode = 1;
    });
}
