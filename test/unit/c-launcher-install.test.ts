// Where the C launcher (dist/sysrunc) finds bin/sysrunc, to which it hands the calls it does not
// serve itself: beside its install, <top>/bin/sysrunc for <top>/dist/sysrunc, its real path (as
// /proc/self/exe names it), so a symlink such as the .deb's /usr/bin/sysrunc works. A copy of it
// installed as bin/sysrunc would exec itself for ever: it says so in one line instead.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../rig/paths.ts';
import { C_LAUNCHER } from '../helpers/launchers.ts';

const dir = mkdtempSync('/tmp/sysrunc-c-launcher-');
after(() => rmSync(dir, { recursive: true, force: true }));
const ENV = { PATH: process.env.PATH, SYSRUNC_RUNTIME: '/bin/true', SYSRUNC_MGR_SOCKET: path.join(dir, 'mgr.sock') };

test('through a symlink elsewhere, the C launcher hands --version to the bin/sysrunc of its install', () => {
  const link = path.join(dir, 'sysrunc');
  symlinkSync(C_LAUNCHER, link);
  const r = spawnSync(link, ['--version'], { encoding: 'utf8', env: ENV });
  assert.equal(r.status, 0, r.stderr);
  const version = readFileSync(path.join(REPO_ROOT, 'dist', 'VERSION'), 'utf8').trim();
  assert.equal(r.stdout.trimEnd().split('\n').at(-1), `sysrunc version ${version}`);
});

test('a copy of the C launcher installed as bin/sysrunc refuses to hand a call to itself, in one line', () => {
  mkdirSync(path.join(dir, 'top', 'bin'), { recursive: true });
  const copy = path.join(dir, 'top', 'bin', 'sysrunc');
  copyFileSync(C_LAUNCHER, copy);
  const r = spawnSync(copy, ['features'], { encoding: 'utf8', env: ENV, timeout: 10_000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `sysrunc: ${copy} is this launcher, not bin/sysrunc: install dist/sysrunc as <top>/dist/sysrunc beside <top>/bin/sysrunc\n`);
});
