import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseOwnershipMode, type OwnershipFacts, type OwnershipMode } from '../../src/manager/ownership/mode-select.ts';

const table: [OwnershipFacts, OwnershipMode][] = [
  [{ idmapSupported: true, shiftfs: true, isOverlay: true }, 'idmap'],
  [{ idmapSupported: true, shiftfs: false, isOverlay: false }, 'idmap'],
  [{ idmapSupported: false, shiftfs: true, isOverlay: true }, 'shiftfs'],
  [{ idmapSupported: false, shiftfs: true, isOverlay: false }, 'shiftfs'],
  [{ idmapSupported: false, shiftfs: false, isOverlay: true }, 'clone'],
  [{ idmapSupported: false, shiftfs: false, isOverlay: false }, 'chown'],
  [{ idmapSupported: true, shiftfs: false, isOverlay: true, forced: 'clone' }, 'clone'],
  [{ idmapSupported: true, shiftfs: false, isOverlay: false, forced: 'chown' }, 'chown'],
  [{ idmapSupported: false, shiftfs: true, isOverlay: false, forced: 'shiftfs' }, 'shiftfs'],
];

test('the best available ownership mode is chosen, or the forced one', () => {
  for (const [facts, mode] of table) {
    const choice = chooseOwnershipMode(facts);
    assert.ok(choice.ok, JSON.stringify(facts));
    assert.equal(choice.mode, mode, JSON.stringify(facts));
    assert.ok(choice.reason.length > 0);
  }
});

test('a forced mode that cannot work here is an error naming why', () => {
  const cases: [OwnershipFacts, RegExp][] = [
    [{ idmapSupported: false, shiftfs: true, isOverlay: true, forced: 'idmap' }, /forced but cannot work here: .*idmapped mounts/],
    [{ idmapSupported: true, shiftfs: false, isOverlay: true, forced: 'shiftfs' }, /forced but cannot work here: shiftfs is not available/],
    [{ idmapSupported: true, shiftfs: true, isOverlay: false, forced: 'clone' }, /forced but cannot work here: the rootfs is not an overlay/],
  ];
  for (const [facts, message] of cases) {
    const choice = chooseOwnershipMode(facts);
    assert.ok(!choice.ok, JSON.stringify(facts));
    assert.match(choice.error, message);
  }
});

test('forcing chown on an overlay rootfs warns about full copy-ups', () => {
  const choice = chooseOwnershipMode({ idmapSupported: false, shiftfs: false, isOverlay: true, forced: 'chown' });
  assert.ok(choice.ok);
  assert.match(choice.reason, /copied up in full/);
});
