// sysrunc-ctl's depot commands sit under `depot`, as the tenant service's sit under `tenant`; the
// first spelling (depot commands at the top level) still works, with one deprecation line on stderr.
// Parsed by the real command definitions (a preAction hook stops before anything is called), and
// run through the real entry point against a socket that does not exist (no daemon needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Command } from 'commander';
import { registerDepotCommands } from '../../src/sysrunc-ctl/depot-commands.ts';
import { REPO_ROOT } from '../rig/paths.ts';

interface Parsed {
  readonly command: string;
  readonly operands: unknown[];
  readonly options: Record<string, unknown>;
}

class ParsedSignal extends Error {
  constructor(readonly parsed: Parsed) {
    super('parsed');
  }
}

async function parse(args: readonly string[]): Promise<Parsed> {
  const program = new Command('sysrunc-ctl').exitOverride();
  registerDepotCommands(program);
  program.hook('preAction', (_root, action) => {
    throw new ParsedSignal({ command: action.name(), operands: action.processedArgs, options: action.opts() });
  });
  try {
    await program.parseAsync(['node', 'sysrunc-ctl', ...args]);
  } catch (err) {
    if (err instanceof ParsedSignal) return err.parsed;
    throw err;
  }
  throw new Error('no action ran');
}

/** sysrunc-ctl run from its source (no build needed), against a depot socket that is not there. */
function ctl(args: readonly string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'sysrunc-ctl', 'main.ts'), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, SYSRUNC_DEPOT_SOCKET: '/nonexistent/depot.sock' },
  });
  return { status: r.status, stderr: r.stderr };
}

const DEPRECATION = /deprecated/;

const lines = [
  ['create', 'web', '--rootfs', '/srv/rootfs/busybox', '--mount', '/a:/b:ro'],
  ['exec', '-d', 'web', 'sh', '-c', 'sleep 5; echo done'],
  ['exec', '-it', 'web', 'sh'],
  ['wait', 'web', 'p1'],
  ['signal', 'web', 'p1', 'KILL'],
  ['ps', 'web', '--json'],
  ['list'],
  ['destroy', 'web'],
];

for (const line of lines) {
  test(`sysrunc-ctl depot ${line.join(' ')} and the old top-level spelling parse the same`, async () => {
    const underDepot = await parse(['depot', ...line]);
    assert.equal(underDepot.command, line[0]);
    assert.deepEqual(await parse(line), underDepot);
  });
}

test('sysrunc-ctl depot <command> prints no deprecation line', () => {
  const r = ctl(['depot', 'list']);
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stderr, DEPRECATION);
  assert.match(r.stderr, /sysrunc-depotd is not reachable at \/nonexistent\/depot\.sock/);
});

test('a depot command without `depot` runs it, with one deprecation line on stderr naming the new spelling', () => {
  const r = ctl(['list']);
  assert.equal(r.status, 1);
  const deprecations = r.stderr.split('\n').filter((l) => DEPRECATION.test(l));
  assert.deepEqual(deprecations, ["sysrunc-ctl: 'list' without 'depot' is deprecated; use 'sysrunc-ctl depot list'"]);
  assert.match(r.stderr, /sysrunc-depotd is not reachable at \/nonexistent\/depot\.sock/, 'the command itself did not run');
});

test('the old top-level depot commands are hidden from help; `depot` is listed beside `tenant`', () => {
  const program = new Command('sysrunc-ctl');
  registerDepotCommands(program);
  const help = program.helpInformation();
  assert.match(help, /^ {2}depot\b/m);
  for (const name of ['create', 'destroy', 'exec', 'attach', 'wait', 'signal', 'forget', 'ps', 'list']) assert.doesNotMatch(help, new RegExp(`^ {2}${name}\\b`, 'm'), name);
});
