// The container watch (src/manager/container-watch.ts) also reports the exit of a container's init
// once runc's state names it, for a container with pid and mount namespaces of its own: the manager
// then returns the engine's overlay before runc's delete (exit-hand-back.ts). Real processes stand
// in for the inits (not children of the test) and a temp dir for runc's root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ContainerWatch } from '../../src/manager/container-watch.ts';
import type { KnownProcess } from '../../src/manager/liveness.ts';
import { killIfRunning, orphanSleep } from '../helpers/orphan-process.ts';
import { ReportedKeys } from '../helpers/reported-keys.ts';

const OWN = ['NEWNS', 'NEWPID', 'NEWUSER'].map((type) => ({ type, path: '' }));

function setup(): { root: string; watch: ContainerWatch; exits: Array<{ id: string; init: KnownProcess }>; exitOf(id: string): Promise<void>; dispose(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sysrunc-watch-init-'));
  const exits: Array<{ id: string; init: KnownProcess }> = [];
  const reported = new ReportedKeys("exit of the init of");
  const watch = new ContainerWatch({
    log: pino({ level: 'silent' }),
    maybeGone: () => {},
    exited: (id, init) => {
      exits.push({ id, init });
      reported.add(id);
    },
  });
  return {
    root,
    watch,
    exits,
    exitOf: (id) => reported.reported(id),
    dispose: () => {
      watch.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Tracks id as a create in flight (its caller alive), then writes runc's state naming init, as runc create does. */
function createdWith(s: ReturnType<typeof setup>, id: string, init: KnownProcess, namespaces: ReadonlyArray<{ type: string; path: string }>, shim: KnownProcess): void {
  s.watch.track({ id, runtimeRoot: s.root, shimPid: shim.pid, shimStartTime: shim.startTime });
  mkdirSync(path.join(s.root, id));
  writeFileSync(path.join(s.root, id, 'state.json'), JSON.stringify({ init_process_pid: init.pid, init_process_start: Number(init.startTime), config: { namespaces } }));
}

test("the exit of a container's init is reported, with its pid and start time, once runc's state names it", async () => {
  const s = setup();
  const [shim, init] = [orphanSleep(), orphanSleep()];
  try {
    createdWith(s, 'own', init, OWN, shim);
    // The watch looks at pending creates every 20 ms: the state is seen, then its init watched.
    await new Promise((r) => setTimeout(r, 100));
    process.kill(init.pid, 'SIGKILL');
    await s.exitOf('own');
    assert.deepEqual(s.exits, [{ id: 'own', init }]);
  } finally {
    for (const p of [shim, init]) killIfRunning(p);
    s.dispose();
  }
});

test("the init of a container in another's pid namespace is not watched", async () => {
  const s = setup();
  const [shim, joinerInit, controlInit] = [orphanSleep(), orphanSleep(), orphanSleep()];
  try {
    createdWith(s, 'joiner', joinerInit, OWN.map((ns) => (ns.type === 'NEWPID' ? { type: 'NEWPID', path: '/proc/1/ns/pid' } : ns)), shim);
    createdWith(s, 'control', controlInit, OWN, shim);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(joinerInit.pid, 'SIGKILL');
    process.kill(controlInit.pid, 'SIGKILL');
    // Both inits were looked at together; once the control's exit is in, the joiner's would be too.
    await s.exitOf('control');
    assert.deepEqual(s.exits.map((e) => e.id), ['control']);
  } finally {
    for (const p of [shim, joinerInit, controlInit]) killIfRunning(p);
    s.dispose();
  }
});
