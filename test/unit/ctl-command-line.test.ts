// sysrunc-ctl tenant run/exec read their command line as docker, ctr and kubectl do: options
// anywhere before `--`, `--` ends them, and without `--` the command starts after the names.
// Parsed by the real command definitions; a preAction hook stops before anything is called.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerTenantCommands, TENANT_COMMAND_TAILS } from '../../src/sysrunc-ctl/tenant-commands.ts';
import { markCommandStart } from '../../src/sysrunc-ctl/command-line.ts';

interface Parsed {
  readonly operands: unknown[];
  readonly options: Record<string, unknown>;
}

class Parsed_ extends Error {
  constructor(readonly parsed: Parsed) {
    super('parsed');
  }
}

async function parse(args: readonly string[]): Promise<Parsed> {
  const program = new Command('sysrunc-ctl').exitOverride();
  registerTenantCommands(program);
  program.hook('preAction', (_root, action) => {
    throw new Parsed_({ operands: action.processedArgs, options: action.opts() });
  });
  try {
    await program.parseAsync(markCommandStart(program, ['node', 'sysrunc-ctl', ...args], TENANT_COMMAND_TAILS));
  } catch (err) {
    if (err instanceof Parsed_) return err.parsed;
    throw err;
  }
  throw new Error('no action ran');
}

test('tenant run: options after the names and `--` before the entrypoint, as the README prints it', async () => {
  const p = await parse(['tenant', 'run', 'acme', 'web', '--rootfs', '/srv/x', '-e', 'A=1', '-i', '--', 'sh', '-c', 'echo hi; exec sleep 1d']);
  assert.deepEqual(p.operands, ['acme', 'web', ['sh', '-c', 'echo hi; exec sleep 1d']]);
  assert.equal(p.options.rootfs, '/srv/x');
  assert.deepEqual(p.options.env, ['A=1']);
  assert.equal(p.options.interactive, true);
});

test('tenant run: options before the names, and an entrypoint with options of its own after `--`', async () => {
  const p = await parse(['tenant', 'run', '--image', 'bb:local', 'acme', 'db', '--', 'sleep', '--rootfs']);
  assert.deepEqual(p.operands, ['acme', 'db', ['sleep', '--rootfs']]);
  assert.equal(p.options.image, 'bb:local');
  assert.equal(p.options.rootfs, undefined);
});

test('tenant run without `--`: the first word after the names starts the entrypoint, its options are its own', async () => {
  const p = await parse(['tenant', 'run', 'acme', 'web', '--rootfs', '/srv/x', 'sh', '-c', 'exit 3', '-e', 'B=2']);
  assert.deepEqual(p.operands, ['acme', 'web', ['sh', '-c', 'exit 3', '-e', 'B=2']]);
  assert.equal(p.options.env, undefined);
});

test('tenant exec: `--` ends the options and is not part of the command', async () => {
  const p = await parse(['tenant', 'exec', 'acme', 'db', '--', 'cmd']);
  assert.deepEqual(p.operands, ['acme', 'db', ['cmd']]);
});

test('tenant exec: --timeout after the names, before `--`', async () => {
  const p = await parse(['tenant', 'exec', 'acme', 'db', '--timeout', '10', '--', 'sh', '-c', 'id; exit 3']);
  assert.deepEqual(p.operands, ['acme', 'db', ['sh', '-c', 'id; exit 3']]);
  assert.equal(p.options.timeout, 10);
});

test('tenant exec without `--`: the command keeps an option that is also exec\'s', async () => {
  const p = await parse(['tenant', 'exec', 'acme', 'db', 'timeout', '--timeout', '3']);
  assert.deepEqual(p.operands, ['acme', 'db', ['timeout', '--timeout', '3']]);
  assert.equal(p.options.timeout, undefined);
});

test('tenant run with no entrypoint is refused by the parser', async () => {
  await assert.rejects(parse(['tenant', 'run', 'acme', 'web', '--rootfs', '/srv/x']), /missing required argument 'entrypoint'/);
});
