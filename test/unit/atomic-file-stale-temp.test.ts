// A writer killed between writing its temp file and the rename leaves `.<name>.<pid>.<hex>.tmp`;
// the manager removes such files from its state dirs when it starts, and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeStaleTempFiles } from '../../src/common/atomic-file.ts';

test('temp files of another (dead) writer are removed; the own, the real files and other dot files stay', () => {
  const dir = mkdtempSync('/var/tmp/sysrunc-stale-temp-');
  try {
    const stale = '.subid.json.4242.0badf00d.tmp';
    const own = `.subid.json.${process.pid}.12345678.tmp`;
    for (const name of [stale, own, 'subid.json', '.hidden', 'x.tmp', '.a.b.tmp']) writeFileSync(path.join(dir, name), '');
    assert.deepEqual(removeStaleTempFiles(dir), [path.join(dir, stale)]);
    assert.deepEqual(readdirSync(dir).sort(), [own, '.a.b.tmp', '.hidden', 'subid.json', 'x.tmp'].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a directory that does not exist has nothing to remove', () => {
  assert.deepEqual(removeStaleTempFiles('/var/tmp/sysrunc-no-such-dir-for-stale-temp'), []);
});

test('a temp file of the current naming (.<name>#<pid>.<hex>.tmp) of a dead writer is removed', () => {
  const dir = mkdtempSync('/var/tmp/sysrunc-stale-temp-');
  try {
    const stale = '.subid.json#4242.0badf00d.tmp';
    writeFileSync(path.join(dir, stale), '');
    assert.deepEqual(removeStaleTempFiles(dir), [path.join(dir, stale)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in a dir of files named by bare container id (hints), an id that looks like an old-style temp name is kept', () => {
  const dir = mkdtempSync('/var/tmp/sysrunc-stale-temp-');
  try {
    const id = '.web.4242.0badf00d.tmp'; // a valid runc id
    writeFileSync(path.join(dir, id), '{}\n');
    assert.deepEqual(removeStaleTempFiles(dir, { legacyNames: false }), []);
    assert.deepEqual(readdirSync(dir), [id]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
