// Restoring a sidecar into a copied tree: entries apply where the tree has them, and a path that
// runs through one of the image's symlinks is never followed out of the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { lgetxattrs } from '../../src/host/fs-native.ts';
import { applySidecar } from '../../src/manager/volumes/sidecar-apply.ts';
import type { SidecarEntry } from '../../src/manager/volumes/sidecar.ts';

const stat = { mode: 0o600, uid: 0, gid: 0, atimeSec: 1000n, atimeNsec: 0, mtimeSec: 2000n, mtimeNsec: 0 };

function tree(t: { after(fn: () => void): void }): { root: string; outside: string } {
  const base = mkdtempSync('/var/tmp/sysrunc-sidecar-apply-');
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'tree');
  const outside = path.join(base, 'outside');
  mkdirSync(path.join(root, 'd'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(root, 'd', 'f'), 'x');
  writeFileSync(path.join(outside, 'f'), 'x');
  symlinkSync(outside, path.join(root, 'link'));
  utimesSync(path.join(root, 'd'), 3000, 4000);
  return { root, outside };
}

const whiteout = (p: string): SidecarEntry => ({ kind: 'whiteout', whiteout: { path: Buffer.from(p), stat, xattrs: [] } });
const xattr = (p: string): SidecarEntry => ({ kind: 'xattrs', path: Buffer.from(p), xattrs: [['user.mark', Buffer.from('y')]] });

test('whiteouts are created where the tree has no entry, with their attributes; the directory keeps its times', async (t) => {
  const { root } = tree(t);
  const done = await applySidecar([whiteout('d/gone'), whiteout('d/f'), xattr('d/f'), xattr('')], root, root);
  assert.deepEqual(done, { whiteouts: 1, xattrs: 2 });
  const w = lstatSync(path.join(root, 'd', 'gone'));
  assert.ok(w.isCharacterDevice() && w.rdev === 0 && (w.mode & 0o7777) === 0o600 && w.mtimeMs === 2_000_000);
  assert.equal(lstatSync(path.join(root, 'd', 'f')).isFile(), true, 'a real entry is never replaced by a whiteout');
  assert.equal(lstatSync(path.join(root, 'd')).mtimeMs, 4_000_000);
  assert.deepEqual(lgetxattrs(Buffer.from(path.join(root, 'd', 'f')), 'f'), [['user.mark', Buffer.from('y')]]);
  assert.deepEqual(lgetxattrs(Buffer.from(root), 'root'), [['user.mark', Buffer.from('y')]]);
});

test('entries whose path runs through a symlink in the tree are skipped, nothing outside the tree changes', async (t) => {
  const { root, outside } = tree(t);
  const done = await applySidecar([whiteout('link/new'), xattr('link/f'), whiteout('nodir/x')], root, root);
  assert.deepEqual(done, { whiteouts: 0, xattrs: 0 });
  assert.deepEqual(readdirSync(outside), ['f']);
  assert.deepEqual(lgetxattrs(Buffer.from(path.join(outside, 'f')), 'f'), []);
});
