// The manager's big chowns run in a child of its own bundle (dist/sysrunc-mgr.mjs, built first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chownInChild } from '../../src/manager/ownership/chown-child.ts';
import { removeDir, tempDir } from '../fixtures/ownership/tree.ts';

const entry = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/sysrunc-mgr.mjs');
const OFFSET = { uid: 400000, gid: 400000 };

test('a chown run in a child of the manager shifts the tree and reports what it did', async () => {
  const work = tempDir('chown-child');
  try {
    const root = path.join(work, 'tree');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    writeFileSync(path.join(root, 'sub', 'f'), 'x');
    const report = await chownInChild(entry)({ root, offset: OFFSET, journalPath: path.join(work, 'journal.json'), direction: 'shift', size: 65536 });
    assert.equal(report.entries, 3);
    assert.equal(report.changed, 3);
    assert.equal(lstatSync(path.join(root, 'sub', 'f')).uid, 400000);
  } finally {
    removeDir(work);
  }
});

test('a failing chown in the child comes back as its one-line error', async () => {
  const work = tempDir('chown-child');
  try {
    await assert.rejects(
      chownInChild(entry)({ root: path.join(work, 'missing'), offset: OFFSET, journalPath: path.join(work, 'journal.json'), direction: 'shift', size: 65536 }),
      /realpath.*missing/,
    );
  } finally {
    removeDir(work);
  }
});
