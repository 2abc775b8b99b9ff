// A bind source is resolved once when the facts are gathered; a user who owns a directory above it
// may then swap that directory for a symlink (here: to a canary tree standing for / or /etc) before
// the manager acts. The executor pins the resolved path (no symlink in any component) and mounts or
// chowns through that fd: the swapped path is refused, never followed. Mounts: run under the e2e lock.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HostExecutor, type ContainerContext } from '../../src/manager/host-executor.ts';
import { RootfsCloner } from '../../src/manager/ownership/rootfs-cloner.ts';
import { mountsUnder } from '../../src/host/mount.ts';
import type { HostAction } from '../../src/manager-api/v1.ts';

const BASE = 310000;

interface Swap {
  executor: HostExecutor;
  ctx: ContainerContext;
  /** The bind source as gathered (realpath'd before the swap). */
  source: string;
  canary: string;
  target: string;
  work: string;
}

/** A source under a user-owned parent, resolved; then the parent is swapped for a symlink to the canary. */
function swapped(t: TestContext, kind: 'dir' | 'file'): Swap {
  const work = mkdtempSync('/var/tmp/sysrunc-bind-swap-');
  const executor = new HostExecutor({ cloner: new RootfsCloner(path.join(work, 'clones')), journalDir: path.join(work, 'journals') });
  const ctx: ContainerContext = {
    id: 'swap', runDir: path.join(work, 'run', 'swap'),
    uidMappings: [{ containerID: 0, hostID: BASE, size: 65536 }], gidMappings: [{ containerID: 0, hostID: BASE, size: 65536 }],
  };
  mkdirSync(ctx.runDir, { recursive: true });
  const canary = path.join(work, 'canary');
  const parent = path.join(work, 'user', 'parent');
  for (const dir of [canary, parent]) {
    mkdirSync(path.join(dir, 'src'), { recursive: true });
    writeFileSync(path.join(dir, 'src', 'keep'), `${dir}\n`);
  }
  const source = path.join(parent, 'src', ...(kind === 'file' ? ['keep'] : []));
  renameSync(parent, `${parent}.old`);
  symlinkSync(canary, parent);
  t.after(() => {
    for (const m of mountsUnder(work).reverse()) executor.undo(ctx, { kind: 'bind-mount', source, target: m, recursive: false });
    rmSync(work, { recursive: true, force: true });
  });
  return { executor, ctx, source, canary, target: path.join(ctx.runDir, 'mounts', '0'), work };
}

function ownersUnder(dir: string): number[] {
  return [lstatSync(dir).uid, ...readdirSync(dir).map((n) => lstatSync(path.join(dir, n)).uid)];
}

function assertRefused(s: Swap, action: HostAction): void {
  assert.throws(() => s.executor.perform(s.ctx, action), /ELOOP .*a directory above it is a symlink/);
  assert.deepEqual(mountsUnder(s.work), [], 'something was mounted');
  assert.deepEqual(ownersUnder(path.join(s.canary, 'src')), [0, 0], 'the canary was chowned');
}

test('a bind-mount source whose parent was swapped for a symlink after it was resolved is refused, not mounted', (t) => {
  const s = swapped(t, 'dir');
  assertRefused(s, { kind: 'bind-mount', source: s.source, target: s.target, recursive: false });
});

test('an idmapped-mount source whose parent was swapped for a symlink after it was resolved is refused, not mounted', (t) => {
  const s = swapped(t, 'dir');
  assertRefused(s, { kind: 'idmapped-mount', source: s.source, target: s.target, recursive: false });
});

test('a chown-tree source whose parent was swapped for a symlink after it was resolved is refused, nothing chowned', (t) => {
  const s = swapped(t, 'dir');
  assertRefused(s, { kind: 'chown-tree', path: s.source });
});

test('a chown-tree file source whose parent was swapped for a symlink after it was resolved is refused, nothing chowned', (t) => {
  const s = swapped(t, 'file');
  assertRefused(s, { kind: 'chown-tree', path: s.source });
});

test('an unswapped bind source is mounted from the fd it was pinned by', (t) => {
  const s = swapped(t, 'dir');
  const real = path.join(s.work, 'user', 'parent.old', 'src');
  s.executor.perform(s.ctx, { kind: 'bind-mount', source: real, target: s.target, recursive: false });
  assert.deepEqual(readdirSync(s.target), ['keep']);
  assert.match(lstatSync(path.join(s.target, 'keep')).isFile() ? 'file' : '', /file/);
  s.executor.undo(s.ctx, { kind: 'bind-mount', source: real, target: s.target, recursive: false });
  assert.deepEqual(mountsUnder(s.work), []);
});
