// host/superblock-watch.ts: a watch on a mounted file system's root tells when its superblock is
// gone, which is not when its mount point is unmounted if anything still holds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mountFs } from '../../src/host/fsmount.ts';
import { unmount } from '../../src/host/mount.ts';
import { SuperblockWatch } from '../../src/host/superblock-watch.ts';
import { withMountScratch } from '../fixtures/ownership/tree.ts';

const withWork = (fn: (work: string) => void): (() => void) => withMountScratch('sbwatch', fn);

function mountTmpfs(work: string): string {
  const dir = path.join(work, 'fs');
  mkdirSync(dir);
  mountFs('tmpfs', [], dir);
  writeFileSync(path.join(dir, 'file'), 'held\n');
  return dir;
}

test('a file system nothing else holds is gone as soon as its mount point is unmounted', withWork((work) => {
  const dir = mountTmpfs(work);
  const watch = SuperblockWatch.of(dir);
  try {
    assert.equal(watch.waitGone(0), false, 'gone while still mounted');
    unmount(dir, { detach: true });
    assert.equal(watch.waitGone(0), true);
  } finally {
    watch.close();
  }
}));

test('a file system with a file open in it outlives a lazy unmount, and goes when the file is closed', withWork((work) => {
  const dir = mountTmpfs(work);
  const held = openSync(path.join(dir, 'file'), 'r');
  const watch = SuperblockWatch.of(dir);
  try {
    unmount(dir, { detach: true });
    assert.equal(watch.waitGone(50), false, 'gone while a file in it was open');
    closeSync(held);
    assert.equal(watch.waitGone(1000), true);
  } finally {
    watch.close();
  }
}));

test('a watch on a path that is not a directory is refused, naming the path', withWork((work) => {
  const file = path.join(work, 'plain');
  writeFileSync(file, '');
  assert.throws(() => SuperblockWatch.of(file), (err: Error) => err.message.startsWith(`inotify_add_watch ${file}: ENOTDIR`));
}));

test('every watch shares one inotify instance: watches beyond the first open no descriptor', withWork((work) => {
  const dir = mountTmpfs(work);
  SuperblockWatch.of(dir).close();
  const before = readdirSync('/proc/self/fd').length;
  const watches = Array.from({ length: 200 }, (_, i) => {
    mkdirSync(path.join(dir, `d${i}`));
    return SuperblockWatch.of(path.join(dir, `d${i}`));
  });
  assert.equal(readdirSync('/proc/self/fd').length, before);
  for (const w of watches) w.close();
}));

test('a watch closed before its file system went leaves the next watch told as before', withWork((work) => {
  const first = mountTmpfs(work);
  SuperblockWatch.of(first).close();
  const second = path.join(work, 'second');
  mkdirSync(second);
  mountFs('tmpfs', [], second);
  const watch = SuperblockWatch.of(second);
  try {
    unmount(first, { detach: true });
    unmount(second, { detach: true });
    assert.equal(watch.waitGone(1000), true);
  } finally {
    watch.close();
  }
}));
