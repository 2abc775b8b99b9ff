// What a create (the manager's register) checks of the other containers: only those its tracker
// does not watch, so a create costs the same with 100 containers running as with none; and when
// the ranges are full, every one, so a container that is gone but not yet released gives its range
// to the new one. The real ManagerService, allocator and registry; no mounts (no host actions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ContainerTracker } from '../../src/manager/service.ts';
import { processStartTime } from '../../src/manager/liveness.ts';
import { scratchService, type ScratchService } from '../fixtures/manager-service.ts';

/** A tracker that watches the ids it is told to (its notice of a container gone is not simulated). */
class FakeTracker implements ContainerTracker {
  readonly watched = new Set<string>();
  track(): void {}
  untrack(id: string): void {
    this.watched.delete(id);
  }
  covers(id: string): boolean {
    return this.watched.has(id);
  }
}

function service(ranges: number): ScratchService & { tracker: FakeTracker } {
  const tracker = new FakeTracker();
  return { ...scratchService('sysrunc-create-sweep', ranges, { tracker }), tracker };
}

/** A pid that has exited (and its start time): a create that died before runc had the container. */
function deadCaller(): { pid: number; startTime: string } {
  const r = spawnSync('sh', ['-c', 'echo $$; cat /proc/$$/stat'], { encoding: 'utf8' });
  const [pid, stat] = r.stdout.split('\n');
  return { pid: Number(pid), startTime: stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '' };
}

function register(s: ReturnType<typeof service>, id: string, caller = { pid: process.pid, startTime: processStartTime(process.pid) ?? '' }) {
  return s.service.register({ id, runtimeRoot: s.runtimeRoot, bundle: s.bundle, shimPid: caller.pid, shimStartTime: caller.startTime, userns: { from: 'allocate' } });
}

test('a create leaves a gone container the tracker watches to the tracker', async () => {
  const s = service(4);
  await register(s, 'gone', deadCaller());
  s.tracker.watched.add('gone');
  await register(s, 'next');
  assert.deepEqual(s.service.list().containers.map((c) => c.id).sort(), ['gone', 'next']);
});

test('a create releases a gone container the tracker does not watch', async () => {
  const s = service(4);
  await register(s, 'gone', deadCaller());
  await register(s, 'next');
  assert.deepEqual(s.service.list().containers.map((c) => c.id), ['next']);
});

test('a create that finds the ranges full gets the range of a gone container the tracker watches', async () => {
  const s = service(1);
  const gone = await register(s, 'gone', deadCaller());
  s.tracker.watched.add('gone');
  const next = await register(s, 'next');
  assert.deepEqual(next.uidMappings, gone.uidMappings);
  assert.deepEqual(s.service.list().containers.map((c) => c.id), ['next']);
});

test('a create that finds the ranges full while every container lives fails as exhausted', async () => {
  const s = service(1);
  await register(s, 'live');
  s.tracker.watched.add('live');
  await assert.rejects(register(s, 'next'), /exhausted/);
});
