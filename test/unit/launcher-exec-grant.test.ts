// Both launchers' (bin/sysrunc, dist/sysrunc) exec into a container whose manager hint says "grant-capabilities": the --process
// file runc gets holds the system container's capabilities, whichever spelling of --process the
// caller used; without the hint it is left as the caller wrote it. No manager or runc: the runtime
// is a script that copies the process file it was given, and the hint is a file in the socket's dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LAUNCHERS, type Launcher } from '../helpers/launchers.ts';
import { boundingSetOf } from '../../src/host/bounding-set.ts';

const dir = mkdtempSync('/tmp/sysrunc-launcher-exec-');
mkdirSync(path.join(dir, 'hints'));
writeFileSync(path.join(dir, 'hints', 'granted'), '{"delete":"async","exec":"grant-capabilities"}\n');
writeFileSync(path.join(dir, 'hints', 'as-is'), '{"delete":"async","exec":"as-is"}\n');
const runtime = path.join(dir, 'runtime');
// The runtime's view of the process file: copied where the test reads it.
writeFileSync(runtime, `#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in --process | -p) cp "$2" '${dir}/seen.json' ;; --process=*) cp "\${1#*=}" '${dir}/seen.json' ;; esac; shift; done\n`, { mode: 0o755 });
const CALLER_PROCESS = { args: ['true'], cwd: '/', user: { uid: 0, gid: 0 }, capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: [] } };

function execThroughLauncher(launcher: Launcher, id: string, processArgs: (file: string) => string[]): { bounding: string[]; effective: string[] } {
  const file = path.join(dir, `process-${id}.json`);
  writeFileSync(file, JSON.stringify(CALLER_PROCESS));
  rmSync(path.join(dir, 'seen.json'), { force: true });
  const r = spawnSync(launcher.path, ['--root', '/run/x', 'exec', ...processArgs(file), '--detach', id], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, SYSRUNC_RUNTIME: runtime, SYSRUNC_MGR_SOCKET: path.join(dir, 'mgr.sock') },
  });
  assert.equal(r.status, 0, r.stderr);
  const seen = JSON.parse(readFileSync(path.join(dir, 'seen.json'), 'utf8')) as { capabilities: { bounding: string[]; effective: string[] } };
  return seen.capabilities;
}

for (const launcher of LAUNCHERS) {
  for (const [spelling, args] of [
    ['--process <file>', (f: string) => ['--process', f]],
    ['--process=<file>', (f: string) => [`--process=${f}`]],
    ['-p <file>', (f: string) => ['-p', f]],
  ] as const) {
    test(`${launcher.name}: exec ${spelling} into a container whose hint grants capabilities: runc gets every capability it can grant`, () => {
      const caps = execThroughLauncher(launcher, 'granted', args);
      assert.deepEqual(caps.bounding, boundingSetOf());
      assert.deepEqual(caps.effective, boundingSetOf());
    });
  }

  test(`${launcher.name}: exec into a container whose hint does not grant capabilities: runc gets the process file as written`, () => {
    const caps = execThroughLauncher(launcher, 'as-is', (f) => ['--process', f]);
    assert.deepEqual(caps.bounding, ['CAP_KILL']);
  });
}
