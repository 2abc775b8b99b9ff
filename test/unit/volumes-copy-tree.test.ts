import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { SyscallError } from '../../src/host/libc.ts';
import { copyTree, type Whiteout } from '../../src/manager/volumes/copy-tree.ts';
import { scratch } from '../fixtures/volumes/env.ts';
import { manifest, withoutBlocks } from '../fixtures/volumes/manifest.ts';
import { makeSpecialTree } from '../fixtures/volumes/tree.ts';

const s = scratch('volumes-copy-tree');
after(() => s.cleanup());

function specialTree(): string {
  const dir = path.join(s.sub('src'), 'tree');
  makeSpecialTree(dir);
  return dir;
}

test('copyTree reproduces every kind of entry exactly between plain directories', async () => {
  const src = specialTree();
  const dst = s.sub('dst');
  await copyTree(src, dst, { srcLabel: src, dstLabel: dst });
  assert.deepEqual(withoutBlocks(manifest(dst)), withoutBlocks(manifest(src)));
});

test('copyTree keeps holes of sparse files', async () => {
  const src = specialTree();
  const dst = s.sub('dst');
  await copyTree(src, dst, { srcLabel: src, dstLabel: dst });
  const blocks = (root: string) => lstatSync(path.join(root, 'overlay2/a1b2c3/diff/sparse.img')).blocks;
  assert.equal(lstatSync(path.join(dst, 'overlay2/a1b2c3/diff/sparse.img')).size, 16 * 1024 * 1024);
  assert.ok(blocks(dst) <= blocks(src) * 2, `${blocks(dst)} blocks allocated for 8 KiB of data`);
});

test('copyTree hands whiteouts an overlayfs destination refuses to the hook and copies the rest', async () => {
  const src = specialTree();
  const merged = s.overlay('dst', s.sub('lower'));
  const rejected: Whiteout[] = [];
  const stats = await copyTree(src, merged, { srcLabel: src, dstLabel: merged, hooks: { onRejectedWhiteout: (w) => rejected.push(w) } });
  assert.deepEqual(rejected.map((w) => w.path.toString()).sort(), ['overlay2/a1b2c3/diff/etc/removed', 'overlay2/a1b2c3/diff/etc/removed-too']);
  assert.equal(stats.rejectedWhiteouts, 2);
  const names = (root: string) => readdirSync(path.join(root, 'overlay2/a1b2c3/diff/etc')).sort();
  assert.deepEqual(names(merged), ['opaque', 'passwd']);
});

test('copyTree without a whiteout hook fails on the first refused whiteout, naming it', async () => {
  const src = specialTree();
  const merged = s.overlay('dst', s.sub('lower'));
  await assert.rejects(
    copyTree(src, merged, { srcLabel: src, dstLabel: merged }),
    (err: unknown) => err instanceof SyscallError && err.code === 'EPERM' && err.message.startsWith(`mknod ${merged}/overlay2/a1b2c3/diff/etc/removed`),
  );
});

test('copyTree copies a symlink to a directory as a symlink, not the directory behind it', async () => {
  const src = s.sub('src');
  mkdirSync(path.join(src, 'a'));
  symlinkSync('/etc', path.join(src, 'a', 'host-etc'));
  const dst = s.sub('dst');
  await copyTree(src, dst, { srcLabel: src, dstLabel: dst });
  assert.ok(lstatSync(path.join(dst, 'a', 'host-etc')).isSymbolicLink());
});
