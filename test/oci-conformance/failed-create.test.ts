// A create or run that runc rejects leaves the caller's bundle exactly as it was (sysrunc never
// writes to it), leaves nothing with the manager, and the next create runs exactly the config.json
// it then finds in the bundle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFixture, type Fixture } from './fixture.ts';
import { mountsUnder, recordsOnceReleased, runDirEntries, snapshotTree } from './helpers/host-state.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('failed');
});
after(async () => fx.dispose());

const MISSING = '/no/such/executable';

/** A busybox bundle whose process is an executable the rootfs does not have: runc init fails. */
async function brokenBundle(name: string): Promise<string> {
  return (await fx.bundle(name, [MISSING])).bundle;
}

async function assertNothingLeft(): Promise<void> {
  assert.deepEqual(await recordsOnceReleased(fx.manager), [], 'a manager record was left');
  assert.deepEqual(mountsUnder(fx.manager.runDir), [], 'a mount was left under the manager run dir');
  assert.deepEqual(runDirEntries(fx.manager), [], 'a run dir, prepared bundle or hint was left');
}

for (const command of ['create', 'run'] as const) {
  test(`a ${command} that runc rejects leaves the bundle byte-identical, with no backup file`, async () => {
    const bundle = await brokenBundle(`${command}-rejected`);
    const before = snapshotTree(bundle);
    const out = await fx.sysrunc.cli([command, '--bundle', bundle, `${command}-rejected`]);
    assert.notEqual(out.exitCode, 0, 'runc accepted a process whose executable is missing');
    assert.match(out.stderr, /no such file or directory|executable file not found/);
    assert.deepEqual(snapshotTree(bundle), before);
  });

  test(`a ${command} that runc rejects leaves nothing with the manager`, async () => {
    const bundle = await brokenBundle(`${command}-nothing`);
    await fx.sysrunc.cli([command, '--bundle', bundle, `${command}-nothing`]);
    await assertNothingLeft();
  });

  test(`after a failed ${command}, the next ${command} runs the config.json it finds in the bundle`, async () => {
    const bundle = await brokenBundle(`${command}-retry`);
    const id = `${command}-retry`;
    const failed = await fx.sysrunc.cli([command, '--bundle', bundle, id]);
    assert.notEqual(failed.exitCode, 0);
    const configPath = path.join(bundle, 'config.json');
    const spec = JSON.parse(readFileSync(configPath, 'utf8')) as { process: { args: string[] } };
    spec.process.args = ['sh', '-c', 'echo fixed'];
    writeFileSync(configPath, `${JSON.stringify(spec, null, 2)}\n`);
    const argv = command === 'run' ? ['run', '--bundle', bundle, id] : ['create', '--bundle', bundle, id];
    const retried = await fx.sysrunc.cli(argv);
    assert.equal(retried.exitCode, 0, retried.stderr);
    if (command === 'run') {
      assert.equal(retried.stdout, 'fixed\n');
    } else {
      const state = JSON.parse((await fx.sysrunc.cli(['state', id])).stdout) as { status: string };
      assert.equal(state.status, 'created');
      await fx.sysrunc.cli(['delete', '--force', id]);
    }
    assert.equal(readFileSync(configPath, 'utf8'), `${JSON.stringify(spec, null, 2)}\n`);
    await assertNothingLeft();
  });
}
