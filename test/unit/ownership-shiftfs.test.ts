import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import path from 'node:path';
import { ShiftfsMarks, detectShiftfs, realShiftfsOps, type ShiftfsMountOps } from '../../src/manager/ownership/shiftfs.ts';
import { removeDir, tempDir } from '../fixtures/ownership/tree.ts';

/** Records mount/unmount calls; paths in failOn make mountMark throw. */
function recorder(failOn: string[] = []): ShiftfsMountOps & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    mountMark(p) {
      if (failOn.includes(p)) throw new Error(`mount ${p}: EPERM (Operation not permitted)`);
      calls.push(`mount ${p}`);
    },
    unmountMark(p) {
      calls.push(`umount ${p}`);
    },
  };
}

test('two containers marking the same dir mount it once', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  assert.deepEqual(marks.mark('a', ['/var/lib/x']), ['/var/lib/x']);
  marks.mark('b', ['/var/lib/x']);
  assert.deepEqual(ops.calls, ['mount /var/lib/x']);
  assert.deepEqual(marks.holdersOf('/var/lib/x'), ['a', 'b']);
});

test('a shared mark stays mounted until its last holder unmarks it', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x']);
  marks.mark('b', ['/x']);
  marks.unmark('a', ['/x']);
  assert.deepEqual(ops.calls, ['mount /x']);
  marks.unmark('b', ['/x']);
  assert.deepEqual(ops.calls, ['mount /x', 'umount /x']);
});

test('marking the same path twice for one container counts once', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x', '/x/']);
  marks.mark('a', ['/x']);
  marks.unmark('a', ['/x']);
  assert.deepEqual(ops.calls, ['mount /x', 'umount /x']);
});

test('unmark of an unknown id is a no-op', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x']);
  marks.unmark('nobody', ['/x']);
  marks.unmark('nobody');
  assert.deepEqual(ops.calls, ['mount /x']);
  assert.deepEqual(marks.holdersOf('/x'), ['a']);
});

test('unmark without paths drops every mark of the id', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x', '/y']);
  marks.unmark('a');
  assert.deepEqual(ops.calls.sort(), ['mount /x', 'mount /y', 'umount /x', 'umount /y']);
  assert.deepEqual(marks.marksOf('a'), []);
});

test('unmarkAll unmounts each mark once', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x', '/y']);
  marks.mark('b', ['/x']);
  assert.deepEqual(marks.unmarkAll(), []);
  assert.deepEqual(ops.calls.filter((c) => c.startsWith('umount')).sort(), ['umount /x', 'umount /y']);
  assert.deepEqual(marks.toJSON(), { version: 1, marks: {} });
});

test('a failed mark undoes the marks made by the same call', () => {
  const ops = recorder(['/bad']);
  const marks = new ShiftfsMarks(ops);
  marks.mark('b', ['/shared']);
  assert.throws(() => marks.mark('a', ['/shared', '/new', '/bad']), /mount \/bad: EPERM/);
  assert.deepEqual(ops.calls, ['mount /shared', 'mount /new', 'umount /new']);
  assert.deepEqual(marks.holdersOf('/shared'), ['b']);
  assert.deepEqual(marks.marksOf('a'), []);
});

test('marks survive toJSON and fromJSON without remounting', () => {
  const ops = recorder();
  const marks = new ShiftfsMarks(ops);
  marks.mark('a', ['/x', '/y']);
  marks.mark('b', ['/x']);
  const state = JSON.parse(JSON.stringify(marks));
  const ops2 = recorder();
  const restored = ShiftfsMarks.fromJSON(state, ops2);
  assert.deepEqual(restored.toJSON(), marks.toJSON());
  restored.unmark('a');
  restored.unmark('b');
  assert.deepEqual(ops2.calls.sort(), ['umount /x', 'umount /y']);
});

test('fromJSON rejects a malformed state', () => {
  assert.throws(() => ShiftfsMarks.fromJSON({ version: 1, marks: { '/x': [] } }, recorder()), /invalid shiftfs marks state: marks\.\/x/);
});

test('detectShiftfs says shiftfs is unavailable on this host and why', () => {
  const d = detectShiftfs();
  assert.equal(d.available, false);
  assert.match(d.reason, /shiftfs is not registered in \/proc\/filesystems/);
  assert.ok(d.reason.includes(release()), d.reason);
});

test('realShiftfsOps refuses to mount without shiftfs', () => {
  assert.throws(() => realShiftfsOps(), /shiftfs unavailable: shiftfs is not registered/);
});

test('detectShiftfs reports a registered shiftfs as available', () => {
  const dir = tempDir('shiftfs');
  try {
    writeFileSync(path.join(dir, 'filesystems'), 'nodev\tsysfs\nnodev\tshiftfs\n\text4\n');
    assert.deepEqual(detectShiftfs({ procFilesystems: path.join(dir, 'filesystems') }).available, true);
  } finally {
    removeDir(dir);
  }
});

test('detectShiftfs names a built but unloaded module', () => {
  const dir = tempDir('shiftfs');
  try {
    writeFileSync(path.join(dir, 'filesystems'), 'nodev\tsysfs\n');
    mkdirSync(path.join(dir, 'modules'));
    writeFileSync(path.join(dir, 'modules/modules.dep'), 'kernel/fs/shiftfs.ko.zst:\nkernel/fs/overlayfs/overlay.ko.zst:\n');
    const d = detectShiftfs({ procFilesystems: path.join(dir, 'filesystems'), modulesDir: path.join(dir, 'modules') });
    assert.equal(d.available, false);
    assert.equal(d.module, path.join(dir, 'modules/kernel/fs/shiftfs.ko.zst'));
    assert.match(d.reason, /exists but is not loaded/);
  } finally {
    removeDir(dir);
  }
});
