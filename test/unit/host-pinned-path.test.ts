// A pinned path (src/host/pinned-path.ts) names what its fd is, not the string it was opened by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withPinnedPath } from '../../src/host/pinned-path.ts';

test('a pinned directory whose parent is renamed afterwards is named by where it is now', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-pinned-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'a', 'data'), { recursive: true });
  withPinnedPath(path.join(dir, 'a', 'data'), 'test', (pinned) => {
    renameSync(path.join(dir, 'a'), path.join(dir, 'b'));
    assert.equal(pinned.real, path.join(dir, 'b', 'data'));
    assert.ok(pinned.stat.isDirectory());
  });
});

test('a path with a symlink in it is refused, never followed', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-pinned-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'real'));
  symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
  assert.throws(() => withPinnedPath(path.join(dir, 'link'), 'test', () => undefined), /symlink/);
});
