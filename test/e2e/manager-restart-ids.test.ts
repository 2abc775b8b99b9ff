// Every id runc accepts survives a manager restart: ids starting with "." (hidden file names) too.
// Their record, hint and range must be found again, or the range of a running container would be
// freed and handed to the next one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startFixture, type Fixture } from '../oci-conformance/fixture.ts';
import { disjoint, managerList, parseIdMap, subidAllocations } from './helpers.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('restart-ids');
});
after(async () => fx?.dispose());

async function startContainer(id: string): Promise<{ start: number; size: number }> {
  const b = await fx.bundle(`bundle-${id.replace(/^\.+/, 'dot')}`, ['sleep', '1000']);
  const pidFile = path.join(fx.work, `${id}.pid`);
  const created = await fx.sysrunc.cli(['create', '--bundle', b.bundle, '--pid-file', pidFile, id]);
  assert.equal(created.exitCode, 0, created.stderr);
  const started = await fx.sysrunc.cli(['start', id]);
  assert.equal(started.exitCode, 0, started.stderr);
  const row = parseIdMap(readFileSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}/uid_map`, 'utf8'))[0];
  assert.notEqual(row, undefined);
  return { start: row?.hostID ?? -1, size: row?.size ?? -1 };
}

test('a running container whose id starts with "." keeps its record and range across a manager restart, and the next container gets another range', async () => {
  const id = '.hidden-id';
  const range = await startContainer(id);
  await fx.manager.restart();
  assert.ok((await managerList(fx.manager)).some((c) => c.id === id), 'the manager lost the record of the running container');
  assert.deepEqual(subidAllocations(fx.manager).filter((a) => a.id === id).map((a) => ({ start: a.uid, size: a.size })), [range]);
  const next = await startContainer('after-restart');
  assert.ok(disjoint([range, next]), `the next container got ${JSON.stringify(next)}, overlapping the running ${JSON.stringify(range)}`);
});
