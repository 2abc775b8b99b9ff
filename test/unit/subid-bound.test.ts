// The bound on one container's range (sysrunc-mgr --max-subid-size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxSubidSize } from '../../src/manager/subid-bound.ts';

const POOL = [{ size: 2 ** 26 }];
const quiet = { warn: () => undefined };

test('by default one container may have at most 16 times the default size', () => {
  assert.equal(maxSubidSize({ defaultSize: 65536 }, POOL, POOL, quiet), 65536 * 16);
});

test("the operator's bound is kept when the pool can hold it", () => {
  assert.equal(maxSubidSize({ defaultSize: 65536, wanted: 262144 }, POOL, POOL, quiet), 262144);
});

test('a bound as large as the pool is lowered, with a warning, to leave one default-size range free', () => {
  const warnings: unknown[] = [];
  const bound = maxSubidSize({ defaultSize: 65536, wanted: 2 ** 26 }, POOL, [{ size: 2 ** 20 }], { warn: (o: unknown) => void warnings.push(o) });
  assert.equal(bound, 2 ** 20 - 65536);
  assert.equal(warnings.length, 1);
});

test('a bound below the default size is an error naming both flags', () => {
  assert.throws(() => maxSubidSize({ defaultSize: 65536, wanted: 1000 }, POOL, POOL, quiet), /--max-subid-size 1000 is below --subid-size 65536/);
});
