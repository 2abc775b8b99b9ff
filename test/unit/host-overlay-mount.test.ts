// Mounting an overlay on kernels with and without `lowerdir+` (issue 18), and the probe that
// tries an overlay over idmapped layers before the manager picks idmap ownership.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FORCE_LEGACY_ENV, legacyOverlayData, lowerdirSupport, mountOverlay } from '../../src/host/overlay-mount.ts';
import { probeIdmappedOverlay } from '../../src/host/idmapped-overlay-probe.ts';
import { mountsUnder, readMountInfo } from '../../src/host/mount.ts';

const scratch = mkdtempSync('/var/tmp/sysrunc-overlay-mount-');

after(() => {
  for (const mp of mountsUnder(scratch).reverse()) execFileSync('umount', ['-l', mp]);
  rmSync(scratch, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = path.resolve(scratch, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Layers l0..l(n-1) under base, each holding a file named after it; l0 is topmost. */
function layers(base: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const l = dir(path.join(base, 'layers', String(i)));
    writeFileSync(path.join(l, `from-${i}`), String(i));
    return l;
  });
}

test('the legacy option string names lower layers inside the base dir relatively, topmost first, upper and work absolutely', () => {
  const data = legacyOverlayData({ lowerdirs: ['/r/c/layers/0', '/r/c/layers/1'], upperdir: '/r/c/upper/diff', workdir: '/r/c/upper/work', options: { redirect_dir: 'on' } }, '/r/c');
  assert.equal(data, 'lowerdir=layers/0:layers/1,upperdir=/r/c/upper/diff,workdir=/r/c/upper/work,redirect_dir=on');
});

test('the legacy option string keeps paths outside the base dir absolute and escapes , : and \\', () => {
  const data = legacyOverlayData({ lowerdirs: ['/x/a:b', '/x/c,d'], options: {} }, '/r/c');
  assert.equal(data, 'lowerdir=/x/a\\:b:/x/c\\,d');
});

test('an option with an empty value is passed as a flag', () => {
  assert.equal(legacyOverlayData({ lowerdirs: ['/a'], options: { volatile: '' } }), 'lowerdir=/a,volatile');
});

test('this kernel (6.8 or later) takes lowerdir+', () => {
  assert.equal(lowerdirSupport(scratch).syntax, 'lowerdir+');
});

test('the legacy syntax can be forced by the environment, and says so', () => {
  process.env[FORCE_LEGACY_ENV] = 'legacy';
  try {
    assert.deepEqual(lowerdirSupport(scratch), { syntax: 'legacy', reason: `colon-joined lowerdir= forced by ${FORCE_LEGACY_ENV}=legacy` });
  } finally {
    delete process.env[FORCE_LEGACY_ENV];
  }
});

for (const syntax of ['lowerdir+', 'legacy'] as const) {
  test(`a ${syntax} overlay of 60 layers merges them all, topmost layer first`, () => {
    const base = dir(`many-${syntax}`);
    const lower = layers(base, 60);
    writeFileSync(path.join(lower[0] ?? '', 'from-1'), 'top wins');
    const merged = dir(path.join(base, 'merged'));
    mountOverlay(merged, { lowerdirs: lower, upperdir: dir(path.join(base, 'upper')), workdir: dir(path.join(base, 'work')), options: {} }, syntax, base);
    assert.equal(readdirSync(merged).length, 60);
    assert.equal(readFileSync(path.join(merged, 'from-1'), 'utf8'), 'top wins');
  });
}

test('a legacy overlay passes a flag option to the kernel (volatile shows in mountinfo, as fsync=volatile from 6.x)', () => {
  const base = dir('volatile');
  const merged = dir(path.join(base, 'merged'));
  mountOverlay(merged, { lowerdirs: layers(base, 1), upperdir: dir(path.join(base, 'upper')), workdir: dir(path.join(base, 'work')), options: { volatile: '' } }, 'legacy', base);
  const line = readMountInfo().find((m) => m.mountPoint === merged);
  assert.match(line?.superOptions ?? '', /(^|,)(fsync=)?volatile(,|$)/);
});

test('the idmapped-overlay probe mounts an overlay over an idmapped layer here, and leaves nothing behind', () => {
  const probeDir = dir('probe-ok');
  const [layer] = layers(dir('probe-layers'), 1);
  assert.deepEqual(probeIdmappedOverlay(layer ?? '', { redirect_dir: 'on', volatile: '' }, probeDir), { supported: true });
  assert.deepEqual(readdirSync(probeDir), []);
});

test('the idmapped-overlay probe refuses options the kernel refuses, naming them', () => {
  const probeDir = dir('probe-bad');
  const [layer] = layers(dir('probe-bad-layers'), 1);
  const support = probeIdmappedOverlay(layer ?? '', { redirect_dir: 'sideways' }, probeDir);
  assert.equal(support.supported, false);
  assert.match(support.supported ? '' : support.reason, new RegExp(`cannot mount an overlay over idmapped layers of ${layer} with redirect_dir=sideways: .*EINVAL`));
  assert.deepEqual(readdirSync(probeDir), []);
});
