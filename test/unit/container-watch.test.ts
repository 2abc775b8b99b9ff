// The container watch (src/manager/container-watch.ts) asks for a container's release once runc's
// state of it is gone and the process that called runc has exited, whichever comes last: a `runc
// run` in the foreground removes the state a moment before it exits itself. Real processes stand
// in for runc (their exit is the caller's exit) and a temp dir for runc's root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ContainerWatch, pollDelayMs } from '../../src/manager/container-watch.ts';
import { processIsAlive, processStartTime } from '../../src/manager/liveness.ts';
import { ReportedKeys } from '../helpers/reported-keys.ts';

interface Setup {
  readonly root: string;
  readonly watch: ContainerWatch;
  /** Releases asked for once the caller had exited (the only ones the manager acts on). */
  readonly gone: string[];
  /** The callers of tracked containers, as the manager's releaseIfGone checks them. */
  readonly callers: Map<string, { pid: number; startTime: string }>;
  /** Resolves when the watch asks for `id`'s release; rejects after a bound against hanging. */
  goneSignal(id: string): Promise<void>;
  dispose(): void;
}

function setup(): Setup {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-watch-'));
  const asked = new ReportedKeys('release asked for');
  const callers = new Map<string, { pid: number; startTime: string }>();
  const watch = new ContainerWatch({
    log: pino({ level: 'silent' }),
    maybeGone: (id) => {
      // As the manager's releaseIfGone: nothing is released while the caller runs.
      const c = callers.get(id);
      if (c !== undefined && processIsAlive(c.pid, c.startTime)) return;
      asked.add(id);
    },
  });
  return {
    root,
    watch,
    gone: asked.keys,
    callers,
    goneSignal: (id) => asked.reported(id),
    dispose: () => {
      watch.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A process standing in for the caller of runc; exits when killed. */
function caller(): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited };
}

function writeState(root: string, id: string): void {
  mkdirSync(path.join(root, id), { recursive: true });
  writeFileSync(path.join(root, id, 'state.json'), '{}');
}

function track(s: Setup, id: string, pid: number): void {
  const shimStartTime = processStartTime(pid);
  assert.ok(shimStartTime !== undefined, `no start time for pid ${pid}`);
  s.callers.set(id, { pid, startTime: shimStartTime });
  s.watch.track({ id, runtimeRoot: s.root, shimPid: pid, shimStartTime });
}

test('runc state removed while its caller still runs: the release is asked for once the caller exits, not before', async () => {
  const s = setup();
  const c = caller();
  try {
    writeState(s.root, 'fg');
    track(s, 'fg', c.child.pid ?? -1);
    const released = s.goneSignal('fg');
    // As `runc run` does at the container's exit: the state goes first, runc itself right after.
    rmSync(path.join(s.root, 'fg'), { recursive: true });
    // Let the watch see the removal while the caller runs: an ask then is refused, as the manager would.
    await new Promise((r) => setTimeout(r, 200));
    c.child.kill('SIGKILL');
    await c.exited;
    await released;
    assert.deepEqual(s.gone, ['fg']);
  } finally {
    c.child.kill('SIGKILL');
    s.dispose();
  }
});

test('a create whose caller exits before runc wrote any state is released', async () => {
  const s = setup();
  const c = caller();
  try {
    track(s, 'never', c.child.pid ?? -1);
    const released = s.goneSignal('never');
    c.child.kill('SIGKILL');
    await c.exited;
    await released;
    assert.deepEqual(s.gone, ['never']);
  } finally {
    c.child.kill('SIGKILL');
    s.dispose();
  }
});

test('runc state removed after its caller exited (a detached container deleted): the release is asked for at once', async () => {
  const s = setup();
  const c = caller();
  try {
    writeState(s.root, 'detached');
    track(s, 'detached', c.child.pid ?? -1);
    c.child.kill('SIGKILL');
    await c.exited;
    const released = s.goneSignal('detached');
    rmSync(path.join(s.root, 'detached'), { recursive: true });
    await released;
    assert.deepEqual(s.gone, ['detached']);
  } finally {
    s.dispose();
  }
});

test('pending creates are looked at every base interval, spaced 1 ms per pending create in a burst', () => {
  assert.equal(pollDelayMs(20, 1), 20);
  assert.equal(pollDelayMs(20, 20), 20);
  // 100 pending: each look checks all 100, ten times a second instead of fifty.
  assert.equal(pollDelayMs(20, 100), 100);
});
