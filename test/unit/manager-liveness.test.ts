import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { processIsAlive, processStartTime } from '../../src/manager/liveness.ts';
import { startUnreapedChild, waitForZombie, procState, type UnreapedChild } from '../fixtures/proc/zombie.ts';

const held: UnreapedChild[] = [];
after(async () => {
  for (const h of held) await h.dispose();
});

test('a running process with its recorded start time is alive', async () => {
  const child = await startUnreapedChild('exec sleep 600');
  held.push(child);
  const start = processStartTime(child.pid);
  assert.notEqual(start, undefined);
  assert.equal(processIsAlive(child.pid, start as string), true);
});

test('an exited process its parent has not reaped yet (a zombie) is not alive', async () => {
  const child = await startUnreapedChild('read _ </dev/null; exec sleep 0.2');
  held.push(child);
  const start = processStartTime(child.pid);
  assert.notEqual(start, undefined);
  await waitForZombie(child.pid);
  assert.equal(procState(child.pid), 'Z');
  assert.equal(processStartTime(child.pid), start, 'a zombie keeps its start time, so only its state tells it is dead');
  assert.equal(processIsAlive(child.pid, start as string), false);
});

test('a pid whose start time differs from the recorded one (reused pid) is not alive', () => {
  assert.equal(processIsAlive(process.pid, '1'), false);
});

test('a pid that does not exist is not alive', () => {
  assert.equal(processIsAlive(2 ** 22 + 1, '1'), false);
});
