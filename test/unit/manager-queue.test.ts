import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialQueue } from '../../src/manager/server.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

test('tasks run one at a time in arrival order, even when they await', async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  const task = (name: string) => async () => {
    log.push(`${name} start`);
    await tick();
    log.push(`${name} end`);
  };
  await Promise.all([q.run(task('a')), q.run(task('b')), q.run(task('c'))]);
  assert.deepEqual(log, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
});

test('a task that steps out with unlocked lets the next task run, then finishes after it', async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  const long = q.run(async () => {
    log.push('long start');
    await q.unlocked(async () => {
      await tick();
      await tick();
      log.push('long copy done');
    });
    log.push('long end');
  });
  const short = q.run(async () => {
    log.push('short');
  });
  await Promise.all([long, short]);
  assert.deepEqual(log, ['long start', 'short', 'long copy done', 'long end']);
});

test('a failing task does not block the queue', async () => {
  const q = new SerialQueue();
  await assert.rejects(q.run(() => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await q.run(() => 42), 42);
});
