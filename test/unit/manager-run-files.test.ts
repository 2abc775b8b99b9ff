// What the manager removes of a container's files on tmpfs at release: its prepared bundle and hint
// (src/manager/prepared-bundles.ts) and its run dir (src/manager/run-dirs.ts), also when a crash
// left them half made, and with nothing to remove.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PreparedBundles } from '../../src/manager/prepared-bundles.ts';
import { removeRunDir } from '../../src/manager/run-dirs.ts';
import { mountListenerPaths } from '../../src/spec-transform/lxcfs-nested.ts';

function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-run-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('removing a prepared bundle takes its config.json, its directory and its hint', (t) => {
  const dir = scratch(t);
  const bundles = new PreparedBundles(path.join(dir, 'run'), path.join(dir, 'sock', 'mgr.sock'));
  const bundle = bundles.writeConfig('c1', '{}');
  bundles.writeHint('c1', { delete: 'sync', exec: 'as-is' });
  bundles.remove('c1');
  assert.equal(existsSync(bundle), false);
  assert.equal(existsSync(path.join(bundles.hintsDir, 'c1')), false);
});

test('removing a prepared bundle also takes what a crashed write left beside config.json', (t) => {
  const dir = scratch(t);
  const bundles = new PreparedBundles(path.join(dir, 'run'), path.join(dir, 'sock', 'mgr.sock'));
  const bundle = bundles.writeConfig('c1', '{}');
  writeFileSync(path.join(bundle, '.config.json#123.abcd.tmp'), '{');
  bundles.remove('c1');
  assert.equal(existsSync(bundle), false);
});

test('a delete that waits no more drops the synchronous delete from the hint and keeps the exec grant', (t) => {
  const dir = scratch(t);
  const bundles = new PreparedBundles(path.join(dir, 'run'), path.join(dir, 'sock', 'mgr.sock'));
  bundles.writeHint('grant', { delete: 'sync', exec: 'grant-capabilities' });
  bundles.writeHint('plain', { delete: 'sync', exec: 'as-is' });
  bundles.deleteWaitsNoMore('grant');
  bundles.deleteWaitsNoMore('plain');
  assert.deepEqual(JSON.parse(readFileSync(path.join(bundles.hintsDir, 'grant'), 'utf8')), { delete: 'async', exec: 'grant-capabilities' });
  // async and as-is is bin/sysrunc's default: no hint at all.
  assert.equal(existsSync(path.join(bundles.hintsDir, 'plain')), false);
});

test('a delete that waits no more leaves a hint it cannot read, and a missing one, as they are', (t) => {
  const dir = scratch(t);
  const bundles = new PreparedBundles(path.join(dir, 'run'), path.join(dir, 'sock', 'mgr.sock'));
  for (const [id, text] of [['torn', '{"delete":"sy'], ['null', 'null'], ['odd', '{"delete":"sync","exec":"all"}']] as const) {
    writeFileSync(path.join(bundles.hintsDir, id), text);
    bundles.deleteWaitsNoMore(id);
    assert.equal(readFileSync(path.join(bundles.hintsDir, id), 'utf8'), text);
  }
  bundles.deleteWaitsNoMore('missing');
  assert.equal(existsSync(path.join(bundles.hintsDir, 'missing')), false);
});

test('removing a bundle that was never written is no error', (t) => {
  const dir = scratch(t);
  const bundles = new PreparedBundles(path.join(dir, 'run'), path.join(dir, 'sock', 'mgr.sock'));
  bundles.remove('never');
  assert.deepEqual([...bundles.ids()], []);
});

test('a run dir whose mount targets are gone is removed with its empty mounts and layers dirs; a missing one is no error', (t) => {
  const runDir = path.join(scratch(t), 'containers', 'c1');
  for (const sub of ['mounts', 'layers']) mkdirSync(path.join(runDir, sub), { recursive: true });
  removeRunDir(runDir);
  assert.equal(existsSync(runDir), false);
  removeRunDir(runDir);
});

test('a run dir with something left in its mounts dir is not removed, with one line naming that dir and why', (t) => {
  const runDir = path.join(scratch(t), 'containers', 'c1');
  mkdirSync(path.join(runDir, 'mounts', 'rootfs'), { recursive: true });
  assert.throws(() => removeRunDir(runDir), { message: `remove ${path.join(runDir, 'mounts')}: ENOTEMPTY` });
  assert.equal(existsSync(path.join(runDir, 'mounts', 'rootfs')), true);
});

test('a container\'s mount listener socket, log and directory go with its run dir', (t) => {
  const runDir = path.join(scratch(t), 'containers', 'c1');
  const paths = mountListenerPaths(runDir);
  for (const dir of [paths.dir, paths.socketDir]) mkdirSync(dir, { recursive: true });
  for (const file of [paths.socket, paths.log]) writeFileSync(file, '');
  removeRunDir(runDir);
  assert.deepEqual([runDir, paths.socket].map(existsSync), [false, false]);
});
