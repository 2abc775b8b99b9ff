// Hostile input (issue 12): ids, config.json files and caller-provided id mappings that sysrunc
// must refuse with one clear line on stderr, exit code 1, and nothing changed anywhere: not the
// bundle, no manager record, allocation, mount or run dir, no container in runc's root.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { editedBundle, sleepingBundle, startFixture, type Fixture, type Outcome } from './fixture.ts';
import { deleteAndSettle, managerRecords, mountsUnder, recordsOnceReleased, runDirEntries, snapshotTree } from './helpers/host-state.ts';
import { subidAllocations } from '../e2e/helpers.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('hostile');
});
after(async () => fx.dispose());

function oneErrorLine(out: Outcome): string {
  assert.match(out.stderr, /^sysrunc: [^\n]+\n$/, `not one "sysrunc: <message>" line on stderr: ${JSON.stringify(out.stderr)}`);
  return out.stderr.slice('sysrunc: '.length, -1);
}

async function containerStatus(id: string): Promise<string | undefined> {
  const out = await fx.sysrunc.cli(['state', id]);
  return out.exitCode === 0 ? (JSON.parse(out.stdout) as { status: string }).status : undefined;
}

/** Runs `create --bundle <bundle> <id>`, checks it is refused with one line naming `names`, and that nothing changed. */
async function assertCreateRefused(bundle: string, id: string, names: readonly string[]): Promise<string> {
  const treeBefore = snapshotTree(bundle);
  const recordsBefore = await managerRecords(fx.manager);
  const allocationsBefore = subidAllocations(fx.manager);
  const runDirsBefore = runDirEntries(fx.manager);
  const out = await fx.sysrunc.cli(['create', '--bundle', bundle, id]);
  assert.equal(out.exitCode, 1, `exit code; stderr: ${out.stderr}`);
  const message = oneErrorLine(out);
  for (const name of names) assert.ok(message.includes(name), `message does not name ${JSON.stringify(name)}: ${message}`);
  assert.equal(out.stdout, '');
  assert.deepEqual(snapshotTree(bundle), treeBefore, 'the bundle changed');
  assert.deepEqual(await recordsOnceReleased(fx.manager, (r) => !recordsBefore.some((b) => b.id === r.id)), recordsBefore, 'a manager record changed');
  assert.deepEqual(subidAllocations(fx.manager), allocationsBefore, 'an allocation changed');
  assert.deepEqual(runDirEntries(fx.manager), runDirsBefore, 'a container run dir changed');
  assert.deepEqual(mountsUnder(path.join(fx.manager.runDir, 'containers', id.replace(/\//g, '_'))), [], 'a mount was left');
  if (!id.includes('/') && id !== '..' && id.length < 256) assert.equal(await containerStatus(id), undefined, 'runc has the container');
  return message;
}

for (const [what, id] of [
  ['with a slash (a/b)', 'a/b'],
  ['..', '..'],
  ['with a path (../../etc/x)', '../../etc/x'],
  ['with a newline', 'a\nb'],
  ['of 300 characters', 'a'.repeat(300)],
  ['of 251 characters (its record file name would pass NAME_MAX)', 'b'.repeat(251)],
] as const) {
  test(`a container id ${what} is refused like runc: one line naming the id, nothing left`, async () => {
    const bundle = await sleepingBundle(fx, `id-${what.replace(/\W+/g, '-')}`);
    await assertCreateRefused(bundle, id, ['invalid container id']);
  });
}

test('a container id of 250 characters, the most sysrunc takes, is created and deleted', async () => {
  const bundle = await sleepingBundle(fx, 'id-250');
  const id = 'c'.repeat(250);
  assert.equal((await fx.sysrunc.cli(['create', '--bundle', bundle, id])).exitCode, 0);
  assert.equal(await containerStatus(id), 'created');
  assert.equal(await deleteAndSettle(fx, id), 0);
});

test('a config.json over the size limit (100 MB) is refused before it is read, naming the file and the limit', async () => {
  const bundle = await sleepingBundle(fx, 'config-huge');
  const config = path.join(bundle, 'config.json');
  const fd = openSync(config, 'r+');
  try {
    ftruncateSync(fd, 100 * 1024 * 1024);
    writeSync(fd, '{', 0);
  } finally {
    closeSync(fd);
  }
  const message = await assertCreateRefused(bundle, 'huge', ['config.json', '16 MiB']);
  assert.match(message, /larger than/);
});

test('a config.json with wrong types (linux.namespaces a string) is refused naming the JSON path', async () => {
  const bundle = await editedBundle(fx, 'config-types', (spec) => {
    (spec.linux as Record<string, unknown>).namespaces = 'user';
  });
  await assertCreateRefused(bundle, 'types', ['config.json', '/linux/namespaces']);
});

test('a config.json that is truncated JSON is refused as invalid JSON', async () => {
  const bundle = await sleepingBundle(fx, 'config-truncated');
  const config = path.join(bundle, 'config.json');
  writeFileSync(config, readFileSync(config, 'utf8').slice(0, 200));
  await assertCreateRefused(bundle, 'truncated', ['config.json', 'invalid JSON']);
});

interface Mapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** A config that creates its own user namespace with these uid mappings (gid ones sane). */
async function callerMappingsBundle(name: string, uidMappings: Mapping[]): Promise<string> {
  return editedBundle(fx, name, (spec) => {
    const linux = spec.linux as { namespaces: { type: string }[]; uidMappings?: Mapping[]; gidMappings?: Mapping[] };
    if (!linux.namespaces.some((n) => n.type === 'user')) linux.namespaces.push({ type: 'user' });
    linux.uidMappings = uidMappings;
    linux.gidMappings = [{ containerID: 0, hostID: 3_000_000_000, size: 65536 }];
  });
}

for (const [what, mappings, words] of [
  ['that map host uid 0', [{ containerID: 0, hostID: 0, size: 65536 }], ['host uid 0']],
  ['that overlap each other on the host', [{ containerID: 0, hostID: 3_000_000_000, size: 1000 }, { containerID: 1000, hostID: 3_000_000_500, size: 1000 }], ['overlapping host ranges']],
  ['that overlap each other in the container', [{ containerID: 0, hostID: 3_000_000_000, size: 1000 }, { containerID: 500, hostID: 3_100_000_000, size: 1000 }], ['overlapping container ranges']],
  ['of size 0', [{ containerID: 0, hostID: 3_000_000_000, size: 0 }], ['size 0']],
  ['past 2^32', [{ containerID: 0, hostID: 4_294_000_000, size: 1_000_000 }], ['2^32']],
] as const) {
  test(`caller-provided uid mappings ${what} are refused with one line, nothing changed`, async () => {
    const bundle = await callerMappingsBundle(`maps-${what.replace(/\W+/g, '-')}`, [...mappings]);
    await assertCreateRefused(bundle, `maps-${words[0].replace(/\W+/g, '-')}`, ['uid mappings', ...words]);
  });
}

test('caller-provided uid mappings that overlap the range sysrunc gave another container are refused, naming it', async () => {
  const first = await sleepingBundle(fx, 'maps-owner');
  const created = await fx.sysrunc.cli(['create', '--bundle', first, 'maps-owner']);
  assert.equal(created.exitCode, 0, created.stderr);
  try {
    const held = subidAllocations(fx.manager).find((a) => a.id === 'maps-owner');
    assert.ok(held !== undefined, 'the first container has no allocation');
    const bundle = await callerMappingsBundle('maps-thief', [{ containerID: 0, hostID: held.uid + 10, size: 65536 }]);
    await assertCreateRefused(bundle, 'maps-thief', ['uid mappings', 'maps-owner']);
  } finally {
    await deleteAndSettle(fx, 'maps-owner');
  }
});

test('the manager refuses to release a container runc still has, and its mounts stay', async () => {
  const bundle = await sleepingBundle(fx, 'release-live');
  const id = 'release-live';
  assert.equal((await fx.sysrunc.cli(['create', '--bundle', bundle, id])).exitCode, 0);
  try {
    const mountsBefore = mountsUnder(path.join(fx.manager.runDir, 'containers', id));
    assert.notDeepEqual(mountsBefore, [], 'the container has no mounts of sysrunc\'s to check');
    const client = await ManagerClient.connect(fx.manager.socket);
    try {
      await assert.rejects(client.call('release', { id, runtimeRoot: fx.sysrunc.root }), /conflict|runc still has the container/);
    } finally {
      client.close();
    }
    assert.deepEqual(mountsUnder(path.join(fx.manager.runDir, 'containers', id)), mountsBefore);
    assert.ok((await managerRecords(fx.manager)).some((r) => r.id === id));
  } finally {
    await deleteAndSettle(fx, id);
  }
});

test('a release of a container the manager has no record of changes nothing', async () => {
  const recordsBefore = await managerRecords(fx.manager);
  const client = await ManagerClient.connect(fx.manager.socket);
  try {
    assert.deepEqual(await client.call('release', { id: 'never-created', runtimeRoot: fx.sysrunc.root }), { found: false });
  } finally {
    client.close();
  }
  assert.deepEqual(await managerRecords(fx.manager), recordsBefore);
});
