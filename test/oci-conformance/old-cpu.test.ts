// The compiled per-call binary (dist/sysrunc-call) is built for Bun's x86-64 baseline: it needs an
// x86-64-v2 CPU (SSE4.2, POPCNT: Nehalem and later). On an older one (qemu's default `qemu64` model,
// common in emulated CI machines) it dies of SIGILL as it starts, and bin/sysrunc runs the same code
// under Node instead. The CPUs here are qemu-user's emulated models running the real binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SYSRUNC } from '../helpers/manager.ts';
import { SCRIPT_LAUNCHER } from '../helpers/launchers.ts';
import { REPO_ROOT, bins } from '../rig/paths.ts';

const QEMU_USER = '/usr/bin/qemu-x86_64';
const COMPILED = path.join(REPO_ROOT, 'dist', 'sysrunc-call');

let install = '';
/** bin/sysrunc as installed, whose dist/sysrunc-call is the real compiled binary on an emulated `cpu`. */
function installOnEmulatedCpu(cpu: string): string {
  const top = mkdtempSync(path.join(tmpdir(), 'sysrunc-old-cpu-'));
  mkdirSync(path.join(top, 'bin'));
  mkdirSync(path.join(top, 'dist'));
  copyFileSync(SCRIPT_LAUNCHER, path.join(top, 'bin', 'sysrunc'));
  chmodSync(path.join(top, 'bin', 'sysrunc'), 0o755);
  // Node resolves a symlinked main module to its real path: chunks and node_modules come from the checkout.
  for (const file of ['sysrunc.mjs', 'VERSION']) symlinkSync(path.join(REPO_ROOT, 'dist', file), path.join(top, 'dist', file));
  writeFileSync(path.join(top, 'dist', 'sysrunc-call'), `#!/bin/sh\nexec ${QEMU_USER} -cpu ${cpu} ${COMPILED} "$@"\n`, { mode: 0o755 });
  return top;
}

before(() => {
  install = installOnEmulatedCpu('qemu64');
});
after(() => {
  if (install !== '') rmSync(install, { recursive: true, force: true });
});

test('the compiled per-call binary runs on an x86-64-v2 CPU without AVX (qemu Nehalem)', () => {
  const r = spawnSync(QEMU_USER, ['-cpu', 'Nehalem', COMPILED, '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sysrunc version \d+\.\d+\.\d+/m);
});

test('below x86-64-v2 (qemu64) the compiled binary cannot start: the case the fallback is for', () => {
  const r = spawnSync(QEMU_USER, ['-cpu', 'qemu64', COMPILED, '--version'], { encoding: 'utf8' });
  assert.equal(r.signal, 'SIGILL', `status ${r.status}, stderr ${r.stderr}`);
});

test('below x86-64-v2, sysrunc features gives the same answer, from the same code under Node', () => {
  const env = { ...process.env, SYSRUNC_RUNTIME: bins.runc };
  const old = spawnSync(path.join(install, 'bin', 'sysrunc'), ['features'], { encoding: 'utf8', env });
  assert.equal(old.status, 0, old.stderr);
  const usual = spawnSync(SYSRUNC, ['features'], { encoding: 'utf8', env });
  assert.deepEqual(JSON.parse(old.stdout), JSON.parse(usual.stdout));
});

test('below x86-64-v2, create is answered by the per-call code under Node, not by SIGILL', () => {
  const env = { ...process.env, SYSRUNC_RUNTIME: bins.runc, SYSRUNC_MGR_SOCKET: path.join(install, 'no-manager.sock'), SYSRUNC_MGR_WAIT_MS: '0' };
  const r = spawnSync(path.join(install, 'bin', 'sysrunc'), ['create', '--bundle', path.join(install, 'no-bundle'), 'old-cpu-create'], { encoding: 'utf8', env });
  assert.notEqual(r.status, 132, r.stderr);
  // The shell reports the compiled binary's death first; the answer is the per-call code's own.
  assert.match(r.stderr.trim().split('\n').pop() ?? '', /^sysrunc: sysrunc-mgr is not reachable at /);
});
