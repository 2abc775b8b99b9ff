// What a create (the manager's register) checks of the other containers: only those its tracker
// does not watch, so a create costs the same with 100 containers running as with none; and when
// the ranges are full, every one, so a container that is gone but not yet released gives its range
// to the new one. The real ManagerService, allocator and registry; no mounts (no host actions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { ManagerService, type ContainerTracker } from '../../src/manager/service.ts';
import { SubidAllocator } from '../../src/manager/subid-alloc.ts';
import { Registry } from '../../src/manager/registry.ts';
import { HostExecutor } from '../../src/manager/host-executor.ts';
import { RootfsCloner } from '../../src/manager/ownership/rootfs-cloner.ts';
import { VolumeManager } from '../../src/manager/volumes/volume-manager.ts';
import { PreparedBundles } from '../../src/manager/prepared-bundles.ts';
import { processStartTime } from '../../src/manager/liveness.ts';

const SIZE = 65536;

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

function service(ranges: number): { service: ManagerService; tracker: FakeTracker; runtimeRoot: string; bundle: string } {
  const base = mkdtempSync('/tmp/sysrunc-create-sweep-');
  const pool = [{ start: 100_000, size: SIZE * ranges }];
  const tracker = new FakeTracker();
  const s = new ManagerService({
    runBase: path.join(base, 'run'),
    allocator: new SubidAllocator({ uidRanges: pool, gidRanges: pool }),
    registry: new Registry(path.join(base, 'state')),
    executor: new HostExecutor({ cloner: new RootfsCloner(path.join(base, 'clones')), journalDir: path.join(base, 'journals') }),
    volumes: new VolumeManager({ root: path.join(base, 'volumes'), stateFile: path.join(base, 'volumes.json') }),
    log: pino({ level: 'silent' }),
    defaultSize: SIZE,
    ownership: { defaultMode: 'auto', shiftfs: { available: false, reason: 'test' } },
    unlocked: (fn) => fn(),
    bundles: new PreparedBundles(path.join(base, 'run'), path.join(base, 'run', 'mgr.sock')),
    hookBinary: '/bin/true',
    tracker,
  });
  return { service: s, tracker, runtimeRoot: path.join(base, 'runc-root'), bundle: base };
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
