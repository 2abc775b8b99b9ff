import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateFileError } from '../../src/manager/state-file.ts';
import { SubidAllocator, type SubidAllocationRecord, type SubidState } from '../../src/manager/subid-alloc.ts';
import { openSubidAllocator, SubidStore } from '../../src/manager/subid-store.ts';

const root = mkdtempSync(join(tmpdir(), 'sysrunc-subid-store-'));
after(() => rmSync(root, { recursive: true, force: true }));

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const loopFixture = fileURLToPath(new URL('../fixtures/subid-alloc-loop.ts', import.meta.url));
const ranges = [{ start: 0x10000000, size: 1 << 20 }];

function statePath(): string {
  return join(mkdtempSync(join(root, 'state-')), 'subid.json');
}

test('allocations survive reopening the store', () => {
  const path = statePath();
  const first = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  first.alloc('a', 65536);
  first.alloc('b', 131072);
  first.alloc('c', 65536);
  first.free('a');
  const reopened = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  assert.deepEqual(reopened.list(), first.list());
  assert.deepEqual(reopened.warnings, []);
  assert.deepEqual(reopened.alloc('b', 131072), first.lookup('b'));
});

test('a reopened allocator never hands out a range that is still live', () => {
  const path = statePath();
  const first = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  const a = first.alloc('a', 65536);
  const reopened = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  assert.notEqual(reopened.alloc('b', 65536).uid, a.uid);
});

test('a missing state file means no allocations, and nothing is written until the first change', () => {
  const path = statePath();
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  assert.deepEqual(allocator.list(), []);
  assert.equal(existsSync(path), false);
  allocator.alloc('a', 65536);
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('a restored allocation outside the configured ranges is kept, reported, and not reused', () => {
  const path = statePath();
  const stale: SubidAllocationRecord = { id: 'old', uid: 0x10000000 - 32768, gid: 0x10000000 - 32768, size: 65536 };
  new SubidStore(path).save({ version: 1, mode: 'exclusive', allocations: [stale] });
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges });
  assert.deepEqual(allocator.lookup('old'), { uid: stale.uid, gid: stale.gid, size: 65536 });
  assert.equal(allocator.warnings.length, 1);
  assert.match(allocator.warnings[0] ?? '', /container "old" holds uids .* outside sysrunc's configured subordinate ranges; kept because it is live/);
  assert.deepEqual(allocator.alloc('new', 65536), { uid: 0x10000000 + 32768, gid: 0x10000000 + 32768, size: 65536 });
});

test('a changed mode is reported and live allocations are kept', () => {
  const restored: SubidState = {
    version: 1,
    mode: 'common',
    allocations: [
      { id: 'a', uid: 0x10000000, gid: 0x10000000, size: 65536 },
      { id: 'b', uid: 0x10000000, gid: 0x10000000, size: 65536 },
    ],
  };
  const allocator = new SubidAllocator({ uidRanges: ranges, gidRanges: ranges, restored });
  assert.deepEqual(allocator.warnings, ['subid mode changed from common to exclusive; 2 live allocations kept as they are']);
  assert.equal(allocator.list().length, 2);
  assert.equal(allocator.alloc('c', 65536).uid, 0x10010000);
});

test('a corrupt state file is refused with an error naming it', () => {
  const path = statePath();
  writeFileSync(path, JSON.stringify({ version: 1, mode: 'exclusive', allocations: [{ id: 'a', uid: -1, gid: 1, size: 1 }] }));
  assert.throws(
    () => openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges }),
    (err: unknown) => err instanceof StateFileError && err.message.startsWith(`${path}: corrupt state file: allocations.0.uid:`),
  );
});

test('a state file listing a container twice is refused as corrupt', () => {
  const path = statePath();
  const a = { id: 'a', uid: 0x10000000, gid: 0x10000000, size: 65536 };
  writeFileSync(path, JSON.stringify({ version: 1, mode: 'exclusive', allocations: [a, { ...a, uid: 0x10010000 }] }));
  assert.throws(() => new SubidStore(path).load(), /duplicate container id/);
});

interface LoopRun {
  printed: SubidAllocationRecord[];
}

/** Runs the allocation loop in a child and SIGKILLs it once `killAfter` ranges were printed. */
function runLoopUntilKilled(path: string, killAfter: number): Promise<LoopRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', loopFixture, path], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.split('\n').length - 1 >= killAfter) child.kill('SIGKILL');
    });
    child.stderr.on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') {
        reject(new Error(`allocation loop ended without being killed (signal ${signal}): ${err}`));
        return;
      }
      const complete = out.slice(0, out.lastIndexOf('\n') + 1);
      const printed = complete
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as SubidAllocationRecord);
      resolve({ printed });
    });
  });
}

test('kill -9 at any moment never loses a range that was handed out', async () => {
  const path = statePath();
  const handedOut: SubidAllocationRecord[] = [];
  for (let round = 0; round < 4; round++) {
    const killAfter = 1 + Math.floor(Math.random() * 150);
    const { printed } = await runLoopUntilKilled(path, killAfter);
    assert.ok(printed.length >= killAfter, `round ${round}: child printed ${printed.length} < ${killAfter}`);
    handedOut.push(...printed);

    const text = readFileSync(path, 'utf8');
    assert.doesNotThrow(() => JSON.parse(text), `round ${round}: state file is not valid JSON`);
    const state = new SubidStore(path).load();
    assert.ok(state, `round ${round}: state file missing`);
    const live = new Map(state.allocations.map((a) => [a.id, a]));
    for (const a of handedOut) assert.deepEqual(live.get(a.id), a, `round ${round}: range of ${a.id} lost`);

    const sorted = [...state.allocations].sort((x, y) => x.uid - y.uid);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      assert.ok(prev.uid + prev.size <= sorted[i]!.uid, `round ${round}: ${prev.id} and ${sorted[i]!.id} overlap`);
    }
  }
});

/** A defer function that keeps the writes it is handed, to run them when the test says. */
function heldBack(): { defer: (write: () => void) => void; runAll: () => void; count: () => number } {
  const writes: (() => void)[] = [];
  return { defer: (w) => writes.push(w), runAll: () => writes.splice(0).forEach((w) => w()), count: () => writes.length };
}

const idsInFile = (path: string): string[] => (existsSync(path) ? (new SubidStore(path).load()?.allocations ?? []).map((a) => a.id) : []);

test('with deferred writes, allocations reach the file when the deferred write runs, in one write for several', () => {
  const path = statePath();
  const later = heldBack();
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, deferAllocWrites: later.defer });
  allocator.alloc('a', 65536);
  allocator.alloc('b', 65536);
  assert.deepEqual(idsInFile(path), []);
  assert.equal(later.count(), 1);
  later.runAll();
  assert.deepEqual(idsInFile(path), ['a', 'b']);
});

test('with deferred writes, a free is written at once, with any allocation still waiting', () => {
  const path = statePath();
  const later = heldBack();
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, deferAllocWrites: later.defer });
  allocator.alloc('a', 65536);
  allocator.alloc('b', 65536);
  allocator.free('a');
  assert.deepEqual(idsInFile(path), ['b']);
  later.runAll();
  assert.deepEqual(idsInFile(path), ['b']);
});

test('flush writes an allocation still waiting before making the file durable', () => {
  const path = statePath();
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, deferAllocWrites: heldBack().defer });
  allocator.alloc('a', 65536);
  allocator.flush();
  assert.deepEqual(idsInFile(path), ['a']);
});

test('a range a container record holds is taken back at open when the file lacks it, and no new allocation overlaps it', () => {
  const path = statePath();
  const first = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, deferAllocWrites: heldBack().defer });
  const a = first.alloc('a', 65536);
  // The manager dies here: its record of "a" was saved, the deferred write never ran.
  assert.deepEqual(idsInFile(path), []);
  const reopened = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, held: [{ id: 'a', ...a }] });
  assert.deepEqual(reopened.lookup('a'), a);
  assert.deepEqual(idsInFile(path), ['a'], 'the file is brought in line at open');
  assert.match(reopened.warnings[0] ?? '', /the range of "a" .* was taken back from its container record/);
  const b = reopened.alloc('b', 65536);
  assert.ok(b.uid >= a.uid + a.size || b.uid + b.size <= a.uid, `b ${JSON.stringify(b)} overlaps a ${JSON.stringify(a)}`);
});

test("where the file and a container record disagree on a range, the record's is kept, with a warning", () => {
  const path = statePath();
  new SubidStore(path).save({ version: 1, mode: 'exclusive', allocations: [{ id: 'a', uid: 0x10000000, gid: 0x10000000, size: 65536 }] });
  const inUse = { id: 'a', uid: 0x10010000, gid: 0x10010000, size: 65536 };
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, held: [inUse] });
  assert.deepEqual(allocator.lookup('a'), { uid: inUse.uid, gid: inUse.gid, size: inUse.size });
  assert.match(allocator.warnings[0] ?? '', /the range of "a" differs from its container record's/);
});

test('ranges the records hold that the file already has change nothing and say nothing', () => {
  const path = statePath();
  const a = { id: 'a', uid: 0x10000000, gid: 0x10000000, size: 65536 };
  new SubidStore(path).save({ version: 1, mode: 'exclusive', allocations: [a] });
  const before = statSync(path).mtimeMs;
  const allocator = openSubidAllocator({ store: new SubidStore(path), uidRanges: ranges, gidRanges: ranges, held: [a] });
  assert.deepEqual(allocator.warnings, []);
  assert.equal(statSync(path).mtimeMs, before);
});
