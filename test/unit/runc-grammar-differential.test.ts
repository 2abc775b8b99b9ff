// Both launchers (bin/sysrunc, POSIX sh; dist/sysrunc, C) and the per-call binary (src/oci/) read
// the same runc command lines the same way: subcommand, container id, exec's --process, sysrunc's own flags and the argv runc gets.
// The corpus is how dockerd, containerd's runc shim (go-runc), podman's conmon, runtime-tools'
// validation and runc's own documentation call runc, with the global flags in every spelling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { effectiveCommand, parseInvocation } from '../../src/oci/invocation.ts';
import { parseDeleteArgs } from '../../src/oci/command-args.ts';
import { parseExecArgs } from '../../src/oci/exec-args.ts';
import { LAUNCHERS, type Launcher } from '../helpers/launchers.ts';

interface Reading {
  readonly subcommand: string;
  readonly ownFlags: boolean;
  /** The argv runc gets (create and run: as received; sysrunc's flags go when argv is rebuilt). */
  readonly runcArgv: readonly string[];
  /** delete and exec only. */
  readonly id: string | undefined;
  readonly processFlag: boolean;
  /** exec's --process file ('' without one): the launcher's C grant rewrites it. */
  readonly processFile: string;
}

const RUNTIME_FLAGS = ['--root', '/run/containerd/runc/moby', '--log', '/run/x/log.json', '--log-format', 'json'];
const BUNDLE = '/run/containerd/io.containerd.runtime.v2.task/moby/c1';

const CORPUS: readonly (readonly string[])[] = [
  // containerd's runc v2 shim (go-runc), as dockerd and Kubernetes use it.
  [...RUNTIME_FLAGS, 'create', '--bundle', BUNDLE, '--pid-file', `${BUNDLE}/init.pid`, 'c1'],
  [...RUNTIME_FLAGS, '--systemd-cgroup', 'create', '--bundle', BUNDLE, '--pid-file', 'p', '--console-socket', '/tmp/pty1/pty.sock', 'c1'],
  [...RUNTIME_FLAGS, 'start', 'c1'],
  [...RUNTIME_FLAGS, 'state', 'c1'],
  [...RUNTIME_FLAGS, 'kill', 'c1', '15'],
  [...RUNTIME_FLAGS, 'kill', '--all', 'c1', '9'],
  [...RUNTIME_FLAGS, 'delete', 'c1'],
  [...RUNTIME_FLAGS, 'delete', '--force', 'c1'],
  [...RUNTIME_FLAGS, 'exec', '--process', '/tmp/runc-process123', '--detach', '--pid-file', `${BUNDLE}/e1.pid`, 'c1'],
  [...RUNTIME_FLAGS, 'exec', '--process', '/tmp/runc-process1', '--console-socket', '/tmp/pty2/pty.sock', '--detach', '--pid-file', 'e.pid', 'c1'],
  [...RUNTIME_FLAGS, 'pause', 'c1'],
  [...RUNTIME_FLAGS, 'update', '--resources', '-', 'c1'],
  [...RUNTIME_FLAGS, 'ps', '--format', 'json', 'c1'],
  [...RUNTIME_FLAGS, 'events', '--stats', 'c1'],
  ['features'],
  ['--version'],
  // dockerd's runtimeArgs come first, sysrunc's own among them.
  ['--sysrunc-storage=/var/lib/sysrunc', ...RUNTIME_FLAGS, 'create', '--bundle', BUNDLE, 'c1'],
  ['--sysrunc-storage=/var/lib/sysrunc', ...RUNTIME_FLAGS, 'delete', '--force', 'c1'],
  ['-sysrunc-storage=/s', '--root', '/r', 'exec', '--process', '/p', 'c1'],
  ['--sysrunc-storage=/s', '--debug', 'state', 'c1'],
  // A global flag's value that looks like a subcommand or like sysrunc's flag is still a value.
  ['--root', 'exec', 'exec', '--process', '/p', 'c1'],
  ['--log', 'delete', 'delete', 'c1'],
  ['--root', '--sysrunc-storage=/s', 'state', 'c1'],
  // sysrunc's flags on both sides of a global flag's value (operator runtimeArgs, then the engine's).
  ['--sysrunc-storage=/s', '--root', '/r', '--sysrunc-userns-size=65536', 'kill', 'c1', 'KILL'],
  ['--log-format', 'json', '--root', 'create', 'exec', '-p', '/p', 'c1'],
  // podman's conmon.
  ['--systemd-cgroup', '--root', '/run/runc', 'create', '--bundle', '/b', '--pid-file', '/b/pidfile', '--no-pivot', '--console-socket', '/tmp/s', 'c1'],
  ['--log-format=json', '--log=/b/log', '--root=/run/runc', 'exec', '--pid-file', '/b/exec.pid', '--process', '/b/p.json', '--detach', '--tty', '--console-socket', '/s', 'c1'],
  ['--root', '/run/runc', 'start', 'c1'],
  ['--root', '/run/runc', 'delete', '--force', 'c1'],
  ['--root', '/run/runc', 'kill', 'c1', 'KILL'],
  // runtime-tools' validation suite.
  ['create', '--bundle', '/tmp/b', 'c1'],
  ['state', 'c1'],
  ['kill', 'c1', 'KILL'],
  ['delete', 'c1'],
  // runc's own documentation.
  ['run', 'mycontainerid'],
  ['--root', '/tmp/runc', 'run', '-d', '--console-socket', 'x', 'mycontainerid'],
  ['exec', '-t', 'mycontainerid', 'sh'],
  ['exec', '--env', 'A=1', '-u', '0:0', '--cwd', '/', '-e', 'B=2', 'mycontainerid', 'ps', '-ef'],
  ['exec', '--cap', 'CAP_NET_ADMIN', '-c', 'CAP_KILL', '--additional-gids', '10', '-g', '11', 'mycontainerid', 'id'],
  ['exec', '--process-label', 'l', '--apparmor', 'a', '--cgroup', 'c', '--preserve-fds', '1', '--no-new-privs', 'mycontainerid', 'true'],
  ['spec', '--rootless'],
  ['list', '--format', 'json'],
  // Every spelling: single dash, `=value`, short names, runc 1.2's --pidfd-socket, `--`.
  ['-root', '/r', '-log', '/l', '-log-format', 'text', '-criu', '/c', '-rootless', 'auto', 'delete', '-f', 'c1'],
  ['-root=/r', '--criu=/c', '--rootless=true', '-debug', '-systemd-cgroup', 'exec', '-p=/p', 'c1'],
  ['--rootless', 'false', 'exec', '--p', '/p', 'c1', 'sh'],
  ['exec', '-process=/p', 'c1'],
  ['exec', '--pidfd-socket', '/s', '--process', '/p', 'c1'],
  ['exec', '-pidfd-socket=/s', 'c1', 'sh'],
  ['exec', '--', 'c1', 'sh'],
  ['exec', '--process', '/p'],
  ['delete', '--force=false', 'c1'],
  ['--', 'delete', 'c1'],
  ['--root', '/r', '--', 'exec', '-p', '/p', 'c1'],
  ['create', '--pidfd-socket', '/s', '--bundle', '/b', 'c1'],
  // Help and version win over the subcommand, as in runc.
  ['-v'],
  ['--v'],
  ['-version'],
  ['--version', 'create', 'c1'],
  ['--version=false', 'state', 'c1'],
  ['-v=true', 'create', 'c1'],
  ['-h', 'create', 'c1'],
  ['--help=1', 'run', 'c1'],
  ['-h', '-v', 'delete', 'c1'],
  ['--version', '--help', 'state', 'c1'],
  ['--help'],
  [],
];

function tsReading(argv: readonly string[]): Reading {
  const inv = parseInvocation(argv);
  const subcommand = effectiveCommand(inv) ?? '';
  const exec = subcommand === 'exec' ? parseExecArgs(inv.commandArgs) : undefined;
  const id = subcommand === 'delete' ? parseDeleteArgs(inv.commandArgs).id : exec?.id;
  return {
    subcommand,
    ownFlags: Object.keys(inv.sysruncFlags).length > 0,
    runcArgv: subcommand === 'create' || subcommand === 'run' ? argv : inv.argv,
    id,
    processFlag: exec?.processFile !== undefined,
    processFile: exec?.processFile ?? '',
  };
}

function launcherReading(launcher: Launcher, argv: readonly string[]): Reading {
  const result = spawnSync(launcher.path, argv, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, SYSRUNC_PARSE_ONLY: '1', SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_MGR_SOCKET: '/nonexistent/mgr.sock' },
  });
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  const value = (key: string): string | undefined => lines.find((line) => line.startsWith(`${key}=`))?.slice(key.length + 1);
  return {
    subcommand: value('subcommand') ?? '',
    ownFlags: value('own_flags') === '1',
    runcArgv: lines.filter((line) => line.startsWith('arg=')).map((line) => line.slice(4)),
    id: value('id'),
    processFlag: value('process') === '1',
    processFile: value('process_file') ?? '',
  };
}

for (const argv of CORPUS) {
  test(`both launchers and the per-call binary read the same: runc ${argv.join(' ')}`, () => {
    const expected = tsReading(argv);
    for (const launcher of LAUNCHERS) assert.deepEqual(launcherReading(launcher, argv), expected, launcher.name);
  });
}

test('the corpus covers every subcommand the launcher acts on, and the version and help flags', () => {
  const seen = new Set(CORPUS.map((argv) => effectiveCommand(parseInvocation(argv))));
  for (const command of ['create', 'run', 'start', 'state', 'kill', 'delete', 'exec', 'features', '--version', '--help']) {
    assert.ok(seen.has(command), command);
  }
});
