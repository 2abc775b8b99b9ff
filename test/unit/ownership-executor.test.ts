// The manager's host executor for in-place ownership changes: crash recovery and refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chownTreeByOffset } from '../../src/manager/ownership/chown-tree.ts';
import { HostExecutor, type ContainerContext } from '../../src/manager/host-executor.ts';
import { RootfsCloner } from '../../src/manager/ownership/rootfs-cloner.ts';
import { removeDir, tempDir } from '../fixtures/ownership/tree.ts';

const BASE = 300000;

function withExecutor(fn: (x: { executor: HostExecutor; work: string; ctx: ContainerContext }) => void): () => void {
  return () => {
    const work = tempDir('executor');
    try {
      const executor = new HostExecutor({ cloner: new RootfsCloner(path.join(work, 'clones')), journalDir: path.join(work, 'journals') });
      const ctx: ContainerContext = {
        id: 'c1',
        runDir: path.join(work, 'run', 'c1'),
        uidMappings: [{ containerID: 0, hostID: BASE, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: BASE, size: 65536 }],
      };
      fn({ executor, work, ctx });
    } finally {
      removeDir(work);
    }
  };
}

function tree(root: string, files: number): void {
  mkdirSync(root, { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(path.join(root, `f${i}`), 'x');
}

const owners = (root: string) => new Set(readdirSync(root).map((n) => lstatSync(path.join(root, n)).uid));

test('chown-tree shifts a tree for the container and its undo shifts it back', withExecutor(({ executor, work, ctx }) => {
  const root = path.join(work, 'data');
  tree(root, 5);
  executor.perform(ctx, { kind: 'chown-tree', path: root });
  assert.deepEqual(owners(root), new Set([BASE]));
  assert.equal(lstatSync(root).uid, BASE);
  executor.undo(ctx, { kind: 'chown-tree', path: root });
  assert.deepEqual(owners(root), new Set([0]));
  assert.deepEqual(readdirSync(path.join(work, 'journals')), [], 'no journal once done');
}));

test('chown-tree of a single file changes that file only', withExecutor(({ executor, work, ctx }) => {
  const dir = path.join(work, 'files');
  tree(dir, 2);
  executor.perform(ctx, { kind: 'chown-tree', path: path.join(dir, 'f0') });
  assert.equal(lstatSync(path.join(dir, 'f0')).uid, BASE);
  assert.equal(lstatSync(path.join(dir, 'f1')).uid, 0);
  assert.equal(lstatSync(dir).uid, 0);
}));

test('an interrupted chown of a container with no record is rolled back at manager start', withExecutor(({ executor, work, ctx }) => {
  const root = path.join(work, 'data');
  tree(root, 50);
  mkdirSync(path.join(work, 'journals'));
  // The executor's journal name for (c1, root), reached through a perform that is cut short.
  let entries = 0;
  assert.throws(() => chownTreeByOffset(root, { uid: BASE, gid: BASE }, {
    journalPath: path.join(work, 'journals', 'c1.0123456789abcdef.json'),
    direction: 'shift',
    progressEvery: 1,
    onProgress: () => {
      if (++entries === 20) throw new Error('crash');
    },
  }), /crash/);
  assert.deepEqual(owners(root), new Set([0, BASE]), 'half done');
  const done = executor.reconcile(new Set());
  assert.equal(done.length, 1);
  assert.match(done[0] ?? '', /rolled back an interrupted chown of container c1/);
  assert.deepEqual(owners(root), new Set([0]));
  assert.equal(lstatSync(root).uid, 0);
  assert.deepEqual(readdirSync(path.join(work, 'journals')), []);
  void ctx;
}));

test('a journal of a container the manager still knows is left for its own release', withExecutor(({ executor, work }) => {
  mkdirSync(path.join(work, 'journals'));
  writeFileSync(path.join(work, 'journals', 'c1.0123456789abcdef.json'), '');
  assert.deepEqual(executor.reconcile(new Set(['c1'])), []);
  assert.ok(existsSync(path.join(work, 'journals', 'c1.0123456789abcdef.json')));
}));

test('chown-tree refuses a host system path and a symlink, changing nothing', withExecutor(({ executor, work, ctx }) => {
  assert.throws(() => executor.perform(ctx, { kind: 'chown-tree', path: '/etc' }), /refusing to chown \/etc for container c1: it is a host system path/);
  assert.throws(() => executor.perform(ctx, { kind: 'chown-tree', path: '/usr/lib' }), /host system path/);
  const target = path.join(work, 'target');
  tree(target, 1);
  symlinkSync(target, path.join(work, 'link'));
  assert.throws(() => executor.perform(ctx, { kind: 'chown-tree', path: path.join(work, 'link') }), /it or a directory above it is a symlink .*; refusing to follow it/);
  assert.deepEqual(owners(target), new Set([0]));
  assert.equal(lstatSync('/etc').uid, 0);
}));

test('chown-tree needs a single contiguous mapping', withExecutor(({ executor, work, ctx }) => {
  const root = path.join(work, 'data');
  tree(root, 1);
  const split = { ...ctx, uidMappings: [{ containerID: 0, hostID: BASE, size: 1 }, { containerID: 1, hostID: BASE + 10, size: 10 }] };
  assert.throws(() => executor.perform(split, { kind: 'chown-tree', path: root }), /needs exactly one uid and one gid mapping/);
  chownSync(root, 0, 0);
}));

test('bind mount targets below one directory of the run dir: it is made once, owned by the container\'s root, and every undo removes its own target', withExecutor(({ executor, work, ctx }) => {
  mkdirSync(ctx.runDir, { recursive: true });
  const source = path.join(work, 'source');
  mkdirSync(source);
  const targets = [0, 1, 2].map((i) => path.join(ctx.runDir, 'mounts', `${i}`));
  for (const target of targets) executor.perform(ctx, { kind: 'bind-mount', source, target, recursive: false });
  assert.deepEqual([lstatSync(path.join(ctx.runDir, 'mounts')).uid, lstatSync(path.join(ctx.runDir, 'mounts')).gid], [BASE, BASE]);
  assert.deepEqual(readdirSync(path.join(ctx.runDir, 'mounts')).sort(), ['0', '1', '2']);
  for (const target of targets.reverse()) executor.undo(ctx, { kind: 'bind-mount', source, target, recursive: false });
  assert.deepEqual(readdirSync(path.join(ctx.runDir, 'mounts')), []);
}));
