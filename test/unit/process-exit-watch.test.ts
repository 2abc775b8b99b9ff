// The process exit watch (src/host/process-exit-watch.ts): pidfds polled on one of libuv's threads
// report the exit of processes the watcher did not start as children of its own (real processes
// here, started by a helper shell so the test process is not their parent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ProcessExitWatch } from '../../src/host/process-exit-watch.ts';
import { processIsAlive } from '../../src/manager/liveness.ts';
import { killIfRunning, orphanSleep } from '../helpers/orphan-process.ts';
import { ReportedKeys } from '../helpers/reported-keys.ts';

/** A bound against hanging only. */
const BOUND_MS = 10_000;

function reports(): { watch: ProcessExitWatch; exited: string[]; exitOf(key: string): Promise<void> } {
  const exits = new ReportedKeys('exit of');
  const watch = new ProcessExitWatch((key) => exits.add(key));
  return { watch, exited: exits.keys, exitOf: (key) => exits.reported(key) };
}

test('the exit of a watched process that is not the watcher\'s child is reported once', async () => {
  const { watch, exited, exitOf } = reports();
  const p = orphanSleep();
  try {
    watch.watch('a', p.pid, () => processIsAlive(p.pid, p.startTime));
    assert.equal(watch.watches('a'), true);
    process.kill(p.pid, 'SIGKILL');
    await exitOf('a');
    assert.deepEqual(exited, ['a']);
    assert.equal(watch.watches('a'), false);
  } finally {
    watch.close();
  }
});

test('a process already gone, or whose pid now names another process, is reported at once', async () => {
  const { watch, exitOf } = reports();
  const gone = orphanSleep();
  process.kill(gone.pid, 'SIGKILL');
  const other = orphanSleep();
  try {
    // Once the kernel has freed the pid, pidfd_open fails with ESRCH.
    while (processIsAlive(gone.pid, gone.startTime)) await new Promise((r) => setTimeout(r, 5));
    watch.watch('gone', gone.pid, () => false);
    // A live pid that is not the process meant (a reused pid): isSame says no.
    watch.watch('reused', other.pid, () => false);
    await Promise.all([exitOf('gone'), exitOf('reused')]);
  } finally {
    watch.close();
    process.kill(other.pid, 'SIGKILL');
  }
});

test('a process unwatched before it exits is not reported; others watched meanwhile are', async () => {
  const { watch, exited, exitOf } = reports();
  const [first, second] = [orphanSleep(), orphanSleep()];
  try {
    watch.watch('first', first.pid, () => true);
    watch.watch('second', second.pid, () => true);
    watch.unwatch('first');
    process.kill(first.pid, 'SIGKILL');
    process.kill(second.pid, 'SIGKILL');
    await exitOf('second');
    assert.deepEqual(exited, ['second']);
  } finally {
    watch.close();
  }
});

test('fifty processes exiting together are each reported', async () => {
  const { watch, exitOf } = reports();
  const procs = Array.from({ length: 50 }, () => orphanSleep());
  try {
    procs.forEach((p, i) => watch.watch(`p${i}`, p.pid, () => true));
    for (const p of procs) process.kill(p.pid, 'SIGKILL');
    await Promise.all(procs.map((_, i) => exitOf(`p${i}`)));
  } finally {
    watch.close();
  }
});

test('a closed watch lets its process exit while a poll is in flight', async () => {
  // A node process watching a sleep, then closing the watch: it exits on its own, or hangs.
  const p = orphanSleep();
  const script = `import { ProcessExitWatch } from ${JSON.stringify(new URL('../../src/host/process-exit-watch.ts', import.meta.url).pathname)};
const w = new ProcessExitWatch(() => {});
w.watch('k', ${p.pid}, () => true);
setTimeout(() => w.close(), 200);`;
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit within ${BOUND_MS} ms of its watch's close`));
      }, BOUND_MS);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0);
  } finally {
    process.kill(p.pid, 'SIGKILL');
  }
});

test('a process still running is not reported when the poll wakes for another\'s exit or a change of the set', async () => {
  const { watch, exited, exitOf } = reports();
  const [running, exiting, added] = [orphanSleep(), orphanSleep(), orphanSleep()];
  try {
    watch.watch('running', running.pid, () => true);
    watch.watch('exiting', exiting.pid, () => true);
    watch.watch('added', added.pid, () => true);
    process.kill(exiting.pid, 'SIGKILL');
    await exitOf('exiting');
    assert.deepEqual(exited, ['exiting']);
    assert.equal(watch.watches('running'), true);
    assert.equal(watch.watches('added'), true);
  } finally {
    watch.close();
    for (const p of [running, exiting, added]) killIfRunning(p);
  }
});
