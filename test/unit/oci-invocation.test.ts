import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInvocation, salvageLogOptions, UsageError } from '../../src/oci/invocation.ts';
import { parseCreateArgs, parseDeleteArgs } from '../../src/oci/command-args.ts';

const CONTAINERD_CREATE = [
  '--root', '/run/containerd/runc/k8s.io', '--log', '/b/log.json', '--log-format', 'json', '--systemd-cgroup',
  'create', '--bundle', '/b', '--pid-file', '/b/init.pid', '--console-socket', '/tmp/pty.sock', 'abc123',
];

test('parses the global flags containerd passes before create', () => {
  const inv = parseInvocation(CONTAINERD_CREATE);
  assert.equal(inv.globals.root, '/run/containerd/runc/k8s.io');
  assert.equal(inv.globals.log, '/b/log.json');
  assert.equal(inv.globals.logFormat, 'json');
  assert.equal(inv.globals.systemdCgroup, true);
  assert.equal(inv.command, 'create');
  assert.deepEqual(inv.globalArgs, CONTAINERD_CREATE.slice(0, 7));
});

test('keeps the argv exactly as received', () => {
  assert.deepEqual(parseInvocation(CONTAINERD_CREATE).argv, CONTAINERD_CREATE);
});

test('accepts --flag=value and single-dash long flags', () => {
  const inv = parseInvocation(['-root=/r', '-log-format=json', 'state', 'x']);
  assert.equal(inv.globals.root, '/r');
  assert.equal(inv.globals.logFormat, 'json');
  assert.equal(inv.command, 'state');
  assert.deepEqual(inv.commandArgs, ['x']);
});

test('--rootless takes a value, as runc string flags do', () => {
  const inv = parseInvocation(['--rootless', 'false', 'list']);
  assert.equal(inv.globals.rootless, 'false');
  assert.equal(inv.command, 'list');
});

test('runtimeArgs from daemon.json before the shim flags are global flags too', () => {
  const inv = parseInvocation(['--debug', '--root', '/var/run/docker/runtime-runc/moby', '--log', 'l', 'delete', 'id']);
  assert.equal(inv.globals.debug, true);
  assert.equal(inv.command, 'delete');
});

test('an unknown global flag is a usage error naming it', () => {
  assert.throws(() => parseInvocation(['--bogus', 'state', 'x']), (err: unknown) =>
    err instanceof UsageError && err.message === 'flag provided but not defined: -bogus');
});

test('a global value flag without its value is a usage error', () => {
  assert.throws(() => parseInvocation(['--root']), /flag needs an argument: -root/);
});

test('an invalid log format is a usage error', () => {
  assert.throws(() => parseInvocation(['--log-format', 'xml', 'state', 'x']), /invalid log-format: xml/);
});

test('--version without a subcommand is recognised', () => {
  const inv = parseInvocation(['--version']);
  assert.equal(inv.globals.version, true);
  assert.equal(inv.command, undefined);
});

test('the log options are salvaged from an argv that does not parse', () => {
  assert.deepEqual(salvageLogOptions(['--log', '/l.json', '--log-format=json', '--bogus']), { log: '/l.json', logFormat: 'json' });
});

test('create args: bundle, id and preserve-fds', () => {
  const args = parseCreateArgs('create', ['--bundle', '/b', '--pid-file', '/p', '--preserve-fds', '2', '--no-pivot', 'c1']);
  assert.deepEqual(args, { id: 'c1', bundle: '/b', consoleSocket: undefined, preserveFds: 2, detach: false, keep: false });
});

test('create args: the console socket as given (runc resolves a relative one against the bundle)', () => {
  assert.equal(parseCreateArgs('create', ['--console-socket', 'tty.sock', 'c1']).consoleSocket, 'tty.sock');
});

test('create args: the bundle defaults to the working directory', () => {
  assert.equal(parseCreateArgs('create', ['c1']).bundle, '.');
});

test('run args: -d and --keep', () => {
  const args = parseCreateArgs('run', ['-d', '--keep', '-b', 'bundle', 'c1']);
  assert.equal(args.detach, true);
  assert.equal(args.keep, true);
  assert.equal(args.bundle, 'bundle');
});

test('create rejects a flag runc does not define for it', () => {
  assert.throws(() => parseCreateArgs('create', ['--detach', 'c1']), /create: flag provided but not defined: -detach/);
});

test('create requires exactly one container id', () => {
  assert.throws(() => parseCreateArgs('create', ['--bundle', '/b']), /"create" requires exactly 1 argument\(s\)/);
  assert.throws(() => parseCreateArgs('create', ['a', 'b']), /"create" requires exactly 1 argument\(s\)/);
});

test('create rejects a container id that is not a single path component', () => {
  assert.throws(() => parseCreateArgs('create', ['../etc']), /invalid container id format: \.\.\/etc/);
  assert.throws(() => parseCreateArgs('create', ['..']), /invalid container id format/);
});

test('create rejects a non-numeric preserve-fds', () => {
  assert.throws(() => parseCreateArgs('create', ['--preserve-fds', 'x', 'c1']), /invalid value "x" for flag -preserve-fds/);
});

test('delete args: --force and -f', () => {
  assert.deepEqual(parseDeleteArgs(['--force', 'c1']), { id: 'c1', force: true });
  assert.deepEqual(parseDeleteArgs(['-f', 'c1']), { id: 'c1', force: true });
  assert.deepEqual(parseDeleteArgs(['c1']), { id: 'c1', force: false });
});

test('boolean flags accept =false', () => {
  assert.deepEqual(parseDeleteArgs(['--force=false', 'c1']), { id: 'c1', force: false });
});

test("sysrunc's own --sysrunc-<name>=<value> global flags are collected and left out of runc's argv", () => {
  const inv = parseInvocation(['--sysrunc-bind-ownership=host-root', '--root', '/r', '-sysrunc-userns-size=131072', 'create', '--bundle', '/b', 'id']);
  assert.deepEqual(inv.sysruncFlags, { 'sysrunc-bind-ownership': 'host-root', 'sysrunc-userns-size': '131072' });
  assert.deepEqual(inv.argv, ['--root', '/r', 'create', '--bundle', '/b', 'id']);
  assert.equal(inv.globals.root, '/r');
});

test('a --sysrunc- argument after the subcommand is not a sysrunc flag', () => {
  const inv = parseInvocation(['exec', 'id', 'sh', '--sysrunc-x=1']);
  assert.deepEqual(inv.sysruncFlags, {});
  assert.deepEqual(inv.argv, ['exec', 'id', 'sh', '--sysrunc-x=1']);
});

test('a sysrunc flag without =value is a usage error naming it', () => {
  assert.throws(() => parseInvocation(['--sysrunc-bind-ownership', 'host-root', 'create', 'id']), (err: unknown) => err instanceof UsageError && /--sysrunc-bind-ownership: sysrunc's flags take their value after "="/.test(err.message));
});
