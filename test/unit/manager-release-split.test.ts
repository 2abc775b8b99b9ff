// A release in two parts (src/manager/release-record.ts): the request that releases a container is
// answered once the engine's part is done; the run dir, the range and the record go in a task of
// their own right after it, in the request queue. The real ManagerService, allocator, registry and
// request queue; no mounts (no host actions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { queueAfterRequest, SerialQueue } from '../../src/manager/server.ts';
import { processStartTime } from '../../src/manager/liveness.ts';
import { scratchService, type ScratchService } from '../fixtures/manager-service.ts';

function service(): ScratchService & { queue: SerialQueue } {
  const queue = new SerialQueue();
  return { ...scratchService('sysrunc-release-split', 4, { unlocked: (fn) => queue.unlocked(fn), afterRequest: queueAfterRequest(queue) }), queue };
}

function register(s: ReturnType<typeof service>, id: string) {
  const caller = { pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
  return s.queue.run(() => s.service.register({ id, runtimeRoot: s.runtimeRoot, bundle: s.bundle, shimPid: caller.pid, shimStartTime: caller.startTime, userns: { from: 'allocate' } }));
}

test('a release answers with the run dir, range and record still there, and they go in the task after it', async () => {
  const s = service();
  const { runDir } = await register(s, 'web');
  const answer = await s.queue.run(() => s.service.release({ id: 'web', runtimeRoot: s.runtimeRoot }));
  assert.deepEqual(answer, { found: true, bundle: s.bundle });
  assert.deepEqual(s.service.engineReleased('web', s.runtimeRoot), { bundle: s.bundle });
  assert.deepEqual({ runDir: existsSync(runDir), range: s.allocator.lookup('web') !== undefined }, { runDir: true, range: true });
  await s.service.allSettled(); // the task queued after the release has run
  assert.equal(s.service.engineReleased('web', s.runtimeRoot), undefined);
  assert.deepEqual({ runDir: existsSync(runDir), range: s.allocator.lookup('web'), records: s.service.records() }, { runDir: false, range: undefined, records: [] });
});

test('a container\'s release is engine-released only under the runtime root it was created in', async () => {
  const s = service();
  await register(s, 'web');
  await s.queue.run(() => s.service.release({ id: 'web', runtimeRoot: s.runtimeRoot }));
  assert.equal(s.service.engineReleased('web', '/run/other-root'), undefined);
});

test('a create of the same id ahead of the queued run dir part finishes that part first, then starts afresh', async () => {
  const s = service();
  await register(s, 'web');
  // The create takes its turn before the task the release queued (as a request already waiting would).
  const [, created] = await s.queue.run(async () => [await s.service.release({ id: 'web', runtimeRoot: s.runtimeRoot }), await s.service.register({ id: 'web', runtimeRoot: s.runtimeRoot, bundle: s.bundle, shimPid: process.pid, shimStartTime: processStartTime(process.pid) ?? '', userns: { from: 'allocate' } })] as const);
  assert.ok(existsSync(created.runDir), 'the new run dir is there');
  await s.service.allSettled();
  assert.deepEqual(s.service.records().map((r) => r.id), ['web']);
  assert.ok(existsSync(created.runDir), 'the queued part, run already, did not remove the new run dir');
});
