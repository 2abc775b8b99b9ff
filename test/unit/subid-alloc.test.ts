import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SubidAllocator,
  SubidError,
  type SubidAllocation,
  type SubidErrorCode,
  type SubidState,
} from '../../src/manager/subid-alloc.ts';
import type { IdRange } from '../../src/manager/subid-ranges.ts';

const MIB = 1 << 20;
const sysrunc: IdRange[] = [{ start: 0x10000000, size: MIB }];

function assertSubidError(fn: () => unknown, code: SubidErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SubidError, `expected SubidError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function overlaps(a: IdRange, b: IdRange): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

/** Deterministic PRNG so a failing run can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function hasFreeRun(available: IdRange[], taken: IdRange[], size: number): boolean {
  for (const r of available) {
    let run = 0;
    for (let id = Math.max(r.start, 1); id < r.start + r.size; id++) {
      run = taken.some((t) => id >= t.start && id < t.start + t.size) ? 0 : run + 1;
      if (run >= size) return true;
    }
  }
  return false;
}

function runRandomOps(uidRanges: IdRange[], gidRanges: IdRange[], seed: number): void {
  const random = mulberry32(seed);
  const allocator = new SubidAllocator({ uidRanges, gidRanges, minSize: 1 });
  const model = new Map<string, SubidAllocation>();
  const sameRanges = JSON.stringify(uidRanges) === JSON.stringify(gidRanges);
  const ctx = `seed ${seed}`;
  let exhaustedSeen = 0;
  for (let op = 0; op < 1000; op++) {
    const id = `c${Math.floor(random() * 40)}`;
    if (random() < 0.6) {
      const size = 1 + Math.floor(random() * 60);
      const existing = model.get(id);
      try {
        const got = allocator.alloc(id, size);
        if (existing) assert.deepEqual(got, existing, ctx);
        else model.set(id, got);
      } catch (err) {
        assert.ok(err instanceof SubidError, ctx);
        if (err.code === 'invalid-size') {
          assert.ok(existing && existing.size !== size, ctx);
        } else {
          assert.equal(err.code, 'exhausted', ctx);
          exhaustedSeen++;
          const live = [...model.values()];
          const uidFree = hasFreeRun(uidRanges, live.map((a) => ({ start: a.uid, size: a.size })), size);
          const gidFree = hasFreeRun(gidRanges, live.map((a) => ({ start: a.gid, size: a.size })), size);
          assert.ok(!(uidFree && gidFree), `${ctx}: exhausted although ${size} ids are free in both`);
        }
      }
    } else {
      try {
        allocator.free(id);
        assert.ok(model.delete(id), ctx);
      } catch (err) {
        assert.ok(err instanceof SubidError && err.code === 'not-found' && !model.has(id), ctx);
      }
    }

    const live = allocator.list();
    assert.deepEqual(new Map(live.map(({ id: i, ...a }) => [i, a])), model, ctx);
    for (const [i, a] of live.entries()) {
      assert.ok(a.uid >= 1 && a.gid >= 1, `${ctx}: host id 0 handed out`);
      const uid = { start: a.uid, size: a.size };
      const gid = { start: a.gid, size: a.size };
      assert.ok(uidRanges.some((r) => r.start <= uid.start && uid.start + uid.size <= r.start + r.size), ctx);
      assert.ok(gidRanges.some((r) => r.start <= gid.start && gid.start + gid.size <= r.start + r.size), ctx);
      if (sameRanges) assert.equal(a.uid, a.gid, `${ctx}: uid and gid offsets differ`);
      for (const b of live.slice(i + 1)) {
        assert.ok(!overlaps(uid, { start: b.uid, size: b.size }), `${ctx}: uid ranges of ${a.id} and ${b.id} overlap`);
        assert.ok(!overlaps(gid, { start: b.gid, size: b.size }), `${ctx}: gid ranges of ${a.id} and ${b.id} overlap`);
      }
    }
  }
  assert.ok(exhaustedSeen > 0, `${ctx}: the run never filled the ranges, so it tested too little`);
}

test('exclusive allocations stay disjoint over 1000 random alloc/free operations', () => {
  const ranges = [
    { start: 0, size: 300 },
    { start: 400, size: 300 },
  ];
  for (const seed of [1, 2, 3, 4, 5]) runRandomOps(ranges, ranges, seed);
});

test('exclusive allocations stay disjoint over random operations when uid and gid ranges differ', () => {
  const uids = [{ start: 1000, size: 600 }];
  const gids = [
    { start: 5000, size: 250 },
    { start: 5300, size: 350 },
  ];
  for (const seed of [11, 12, 13]) runRandomOps(uids, gids, seed);
});

test('exclusive mode gives each container its own range, same offset for uid and gid', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  assert.deepEqual(allocator.alloc('a', 65536), { uid: 0x10000000, gid: 0x10000000, size: 65536 });
  assert.deepEqual(allocator.alloc('b', 65536), { uid: 0x10010000, gid: 0x10010000, size: 65536 });
});

test('alloc defaults to 65536 ids', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  assert.equal(allocator.alloc('a').size, 65536);
});

test('exclusive mode picks a common offset for uid and gid when one exists further up', () => {
  const allocator = new SubidAllocator({
    uidRanges: [{ start: 100000, size: 4 * 65536 }],
    gidRanges: [{ start: 100000 + 65536, size: 3 * 65536 }],
  });
  assert.deepEqual(allocator.alloc('a', 65536), { uid: 165536, gid: 165536, size: 65536 });
});

test('exclusive mode uses different uid and gid offsets when no common one is free', () => {
  const allocator = new SubidAllocator({
    uidRanges: [{ start: 100000, size: 65536 }],
    gidRanges: [{ start: 900000, size: 65536 }],
  });
  assert.deepEqual(allocator.alloc('a', 65536), { uid: 100000, gid: 900000, size: 65536 });
});

test('an allocation may span adjacent subid entries', () => {
  const allocator = new SubidAllocator({
    uidRanges: [
      { start: 100000, size: 65536 },
      { start: 165536, size: 65536 },
    ],
    gidRanges: [{ start: 100000, size: 131072 }],
  });
  assert.deepEqual(allocator.alloc('a', 131072), { uid: 100000, gid: 100000, size: 131072 });
});

test('common mode gives every container the same range', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, mode: 'common' });
  const a = allocator.alloc('a', 65536);
  const b = allocator.alloc('b', 65536);
  const c = allocator.alloc('c', 65536);
  assert.deepEqual(a, { uid: 0x10000000, gid: 0x10000000, size: 65536 });
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
  assert.equal(allocator.list().length, 3);
});

test('common mode never runs out while the shared range fits', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, mode: 'common' });
  for (let i = 0; i < 100; i++) allocator.alloc(`c${i}`, MIB);
  assert.equal(allocator.list().length, 100);
});

test('common mode rejects a different size while containers share the range', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, mode: 'common' });
  allocator.alloc('a', 65536);
  assertSubidError(() => allocator.alloc('b', 131072), 'invalid-size', /share a range of 65536 ids; requested 131072/);
  allocator.free('a');
  assert.equal(allocator.alloc('b', 131072).size, 131072);
});

test('alloc is idempotent for the same id and size', () => {
  const persisted: SubidState[] = [];
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, persist: (s) => persisted.push(s) });
  const first = allocator.alloc('a', 65536);
  assert.deepEqual(allocator.alloc('a', 65536), first);
  assert.equal(allocator.list().length, 1);
  assert.equal(persisted.length, 1);
});

test('alloc with a different size for a live id is invalid-size and keeps the old range', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  const first = allocator.alloc('a', 65536);
  assertSubidError(() => allocator.alloc('a', 131072), 'invalid-size', /already holds 65536 ids/);
  assert.deepEqual(allocator.lookup('a'), first);
});

test('free of an unknown id is not-found', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  assertSubidError(() => allocator.free('ghost'), 'not-found', /^subid allocation for container "ghost": not-found:/);
});

test('free makes the range available again', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  const a = allocator.alloc('a', 65536);
  allocator.alloc('b', 65536);
  allocator.free('a');
  assert.equal(allocator.lookup('a'), undefined);
  assert.deepEqual(allocator.alloc('c', 65536), a);
});

test('alloc is exhausted when no free range is left, with a message saying how full it is', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  for (let i = 0; i < 16; i++) allocator.alloc(`c${i}`, 65536);
  assertSubidError(
    () => allocator.alloc('x', 65536),
    'exhausted',
    /^subid allocation for container "x": exhausted: no free range of 65536 ids left in sysrunc's 1048576 subordinate ids \(16 containers hold ids\)$/,
  );
});

test('invalid sizes are rejected with invalid-size', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32 + 1, 65535, MIB + 1]) {
    assertSubidError(() => allocator.alloc('a', size), 'invalid-size');
  }
  assert.equal(allocator.list().length, 0);
});

test('a size larger than the largest contiguous block says it can never fit', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  assertSubidError(() => allocator.alloc('a', 2 * MIB), 'invalid-size', /can never fit/);
});

test('the minimum size is configurable', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, minSize: 1000 });
  assert.equal(allocator.alloc('a', 1000).size, 1000);
  assertSubidError(() => allocator.alloc('b', 999), 'invalid-size', /outside \[1000, 2\^32\]/);
});

test('host id 0 is never handed out even if the ranges include it', () => {
  const allocator = new SubidAllocator({
    uidRanges: [{ start: 0, size: 65537 }],
    gidRanges: [{ start: 0, size: 65537 }],
  });
  assert.deepEqual(allocator.alloc('a', 65536), { uid: 1, gid: 1, size: 65536 });
});

test('the whole id space still excludes 0 and 2^32-1', () => {
  const all = [{ start: 0, size: 2 ** 32 }];
  const allocator = new SubidAllocator({ uidRanges: all, gidRanges: all });
  assertSubidError(() => allocator.alloc('a', 2 ** 32), 'invalid-size', /can never fit/);
  assert.deepEqual(allocator.alloc('b', 2 ** 32 - 2), { uid: 1, gid: 1, size: 2 ** 32 - 2 });
});

test('the new state is persisted before alloc returns and before free completes', () => {
  const persisted: SubidState[] = [];
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc, persist: (s) => persisted.push(s) });
  const a = allocator.alloc('a', 65536);
  assert.deepEqual(persisted.at(-1), { version: 1, mode: 'exclusive', allocations: [{ id: 'a', ...a }] });
  allocator.free('a');
  assert.deepEqual(persisted.at(-1), { version: 1, mode: 'exclusive', allocations: [] });
});

test('a failing persist leaves the allocation undone', () => {
  let fail = true;
  const allocator = new SubidAllocator({
    uidRanges: sysrunc,
    gidRanges: sysrunc,
    persist: () => {
      if (fail) throw new Error('disk full');
    },
  });
  assert.throws(() => allocator.alloc('a', 65536), /disk full/);
  assert.equal(allocator.lookup('a'), undefined);
  fail = false;
  allocator.alloc('a', 65536);
  fail = true;
  assert.throws(() => allocator.free('a'), /disk full/);
  assert.notEqual(allocator.lookup('a'), undefined);
});

test('lookup and list return copies that cannot change the allocator', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  allocator.alloc('a', 65536);
  const found = allocator.lookup('a');
  assert.ok(found);
  found.uid = 0;
  const [listed] = allocator.list();
  assert.ok(listed);
  listed.gid = 0;
  assert.deepEqual(allocator.lookup('a'), { uid: 0x10000000, gid: 0x10000000, size: 65536 });
});

test('an empty container id is rejected', () => {
  const allocator = new SubidAllocator({ uidRanges: sysrunc, gidRanges: sysrunc });
  assert.throws(() => allocator.alloc('', 65536), TypeError);
});
