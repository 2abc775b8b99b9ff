import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { libc, sysFail } from '../../src/host/libc.ts';
import { mountFs } from '../../src/host/fsmount.ts';
import { isMountPoint } from '../../src/host/mount.ts';
import { lgetxattr } from '../../src/host/xattr.ts';
import { chownTreeByOffset } from '../../src/manager/ownership/chown-tree.ts';
import {
  createOverlayClone, parseOverlayMount, parseOverlayOptions, removeOverlayClone,
} from '../../src/manager/ownership/overlay-clone.ts';
import { sh, withMountScratch } from '../fixtures/ownership/tree.ts';

const OFF = { uid: 100000, gid: 100000 };

const withWork = (fn: (work: string) => void): (() => void) => withMountScratch('ovl', fn);

interface Source {
  merged: string;
  upper: string;
  lowers: string[];
}

/** An overlay of n lower layers (layer i holds f<i>) plus an upper holding from-upper, mounted with lowerdir+. */
function mountSource(work: string, n: number, pad = 60): Source {
  const lowers: string[] = [];
  for (let i = 0; i < n; i++) {
    const dir = path.join(work, `layer-${String(i).padStart(3, '0')}-${'x'.repeat(pad)}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, `f${i}`), `layer ${i}\n`);
    lowers.push(dir);
  }
  const src = { merged: path.join(work, 'src-merged'), upper: path.join(work, 'src-upper'), lowers };
  for (const d of [src.merged, src.upper, path.join(work, 'src-work')]) mkdirSync(d);
  writeFileSync(path.join(src.upper, 'from-upper'), 'upper\n');
  mountFs('overlay', [
    ...lowers.map((value) => ({ key: 'lowerdir+', value })),
    { key: 'upperdir', value: src.upper },
    { key: 'workdir', value: path.join(work, 'src-work') },
  ], src.merged);
  return src;
}

function statIds(p: string): number[] {
  const st = lstatSync(p);
  return [st.uid, st.gid, st.mode, st.ctimeMs];
}

test('parseOverlayOptions reads lowerdir+, datadir+ and octal escapes', () => {
  const parsed = parseOverlayOptions('rw,lowerdir+=/l/one,lowerdir+=/l/two\\054three,datadir+=/d/x,upperdir=/u\\040dir,workdir=/w,redirect_dir=on,metacopy=on,userxattr');
  assert.deepEqual(parsed, {
    lowerdirs: ['/l/one', '/l/two,three'],
    datadirs: ['/d/x'],
    upperdir: '/u dir',
    workdir: '/w',
    options: { rw: true, redirect_dir: 'on', metacopy: 'on', userxattr: true },
  });
});

test('parseOverlayOptions splits a legacy lowerdir on unescaped colons, data-only layers after ::', () => {
  const parsed = parseOverlayOptions('rw,lowerdir=/a\\134:b:/c::/d1::/d2,upperdir=/u,workdir=/w');
  assert.deepEqual(parsed.lowerdirs, ['/a:b', '/c']);
  assert.deepEqual(parsed.datadirs, ['/d1', '/d2']);
});

test('parseOverlayOptions resolves relative layer paths against baseDir only', () => {
  const opts = 'rw,lowerdir=l/AAA:l/BBB,upperdir=abc/diff,workdir=abc/work';
  assert.deepEqual(parseOverlayOptions(opts, '/var/lib/docker/overlay2').lowerdirs, ['/var/lib/docker/overlay2/l/AAA', '/var/lib/docker/overlay2/l/BBB']);
  assert.throws(() => parseOverlayOptions(opts), /layer path "l\/AAA" is relative/);
});

test('parseOverlayMount decodes escaped characters of a classic mount', withWork((work) => {
  const a = path.join(work, 'low:colon');
  const b = path.join(work, 'low space,comma');
  const merged = path.join(work, 'm');
  for (const d of [a, b, merged]) mkdirSync(d);
  const esc = (p: string): string => p.replace(/[\\:,]/g, (c) => `\\${c}`);
  if (libc().mount('overlay', merged, 'overlay', 0, `lowerdir=${esc(a)}:${esc(b)}`) === -1) throw sysFail('mount', merged);
  assert.deepEqual(parseOverlayMount(merged).lowerdirs, [a, b]);
}));

test('a clone of an 80-layer overlay shows the files of every layer', withWork((work) => {
  const src = mountSource(work, 80);
  // Beyond what mount(2) can take in its one-page option string.
  assert.ok(src.lowers.join(':').length > 4096);
  const clone = createOverlayClone({ id: 'c80', source: src.merged, cloneRoot: path.join(work, 'clones') });
  const expected = [...src.lowers.map((_, i) => `f${i}`), 'from-upper'].sort();
  assert.deepEqual(readdirSync(clone.merged).sort(), expected);
  assert.equal(readFileSync(path.join(clone.merged, 'f79'), 'utf8'), 'layer 79\n');
  assert.deepEqual(parseOverlayMount(clone.merged).lowerdirs, [src.upper, ...src.lowers]);
}));

test('chowning the clone copies up metadata only and leaves the layers untouched', withWork((work) => {
  const src = mountSource(work, 3);
  const big = Buffer.alloc(1 << 20, 7);
  writeFileSync(path.join(src.lowers[1] ?? '', 'big'), big);
  const layerFiles = [...src.lowers.map((l, i) => path.join(l, `f${i}`)), path.join(src.lowers[1] ?? '', 'big'), path.join(src.upper, 'from-upper')];
  const before = layerFiles.map(statIds);
  const clone = createOverlayClone({ id: 'meta', source: src.merged, cloneRoot: path.join(work, 'clones') });

  chownTreeByOffset(clone.merged, OFF, { journalPath: path.join(work, 'journal'), direction: 'shift' });

  assert.deepEqual(layerFiles.map(statIds), before);
  assert.equal(lstatSync(path.join(clone.merged, 'big')).uid, OFF.uid);
  assert.deepEqual(readFileSync(path.join(clone.merged, 'big')), big);
  const upperBig = path.join(clone.upper, 'big');
  // No data extents; the one block ext4 may report holds the overlay xattrs.
  assert.match(sh('filefrag', [upperBig]), /: 0 extents found/);
  assert.ok(lstatSync(upperBig).blocks * 512 <= 4096);
  assert.ok(lgetxattr(upperBig, 'trusted.overlay.metacopy') !== undefined, 'upper copy is a metacopy');
}));

test('hardlinks that copy-up splits are all shifted in the clone', withWork((work) => {
  const src = mountSource(work, 1);
  linkSync(path.join(src.lowers[0] ?? '', 'f0'), path.join(src.lowers[0] ?? '', 'f0-link'));
  const clone = createOverlayClone({ id: 'links', source: src.merged, cloneRoot: path.join(work, 'clones') });
  chownTreeByOffset(clone.merged, OFF, { journalPath: path.join(work, 'journal'), direction: 'shift' });
  assert.equal(lstatSync(path.join(clone.merged, 'f0')).uid, OFF.uid);
  assert.equal(lstatSync(path.join(clone.merged, 'f0-link')).uid, OFF.uid);
}));

test('the clone root takes the owner and mode of the source root', withWork((work) => {
  const src = mountSource(work, 1);
  sh('chmod', ['0751', src.upper]);
  const clone = createOverlayClone({ id: 'rootmode', source: src.merged, cloneRoot: path.join(work, 'clones') });
  assert.equal(lstatSync(clone.merged).mode & 0o7777, 0o751);
}));

test('removeOverlayClone unmounts and deletes the clone, the source stays', withWork((work) => {
  const src = mountSource(work, 2);
  const cloneRoot = path.join(work, 'clones');
  const clone = createOverlayClone({ id: 'gone', source: src.merged, cloneRoot });
  writeFileSync(path.join(clone.merged, 'written-in-clone'), 'x');
  removeOverlayClone('gone', cloneRoot);
  assert.equal(existsSync(path.join(cloneRoot, 'gone')), false);
  assert.equal(isMountPoint(src.merged), true);
  assert.deepEqual(readdirSync(src.merged).sort(), ['f0', 'f1', 'from-upper']);
  removeOverlayClone('gone', cloneRoot); // already gone: no-op
}));

test('removeOverlayClone refuses while something is mounted below the clone', withWork((work) => {
  const src = mountSource(work, 1);
  const cloneRoot = path.join(work, 'clones');
  const clone = createOverlayClone({ id: 'busy', source: src.merged, cloneRoot });
  const inner = path.join(clone.upper, 'inner');
  mkdirSync(inner);
  writeFileSync(path.join(work, 'keep'), 'keep');
  sh('mount', ['--bind', work, inner]);
  assert.throws(() => removeOverlayClone('busy', cloneRoot), /rmdir .*busy: EBUSY .*still mounted below it/);
  assert.equal(readFileSync(path.join(work, 'keep'), 'utf8'), 'keep');
  sh('umount', [inner]);
  removeOverlayClone('busy', cloneRoot);
  assert.equal(existsSync(path.join(cloneRoot, 'busy')), false);
}));

test('createOverlayClone refuses an existing clone directory', withWork((work) => {
  const src = mountSource(work, 1);
  const cloneRoot = path.join(work, 'clones');
  createOverlayClone({ id: 'twice', source: src.merged, cloneRoot });
  assert.throws(() => createOverlayClone({ id: 'twice', source: src.merged, cloneRoot }), /mkdir .*twice: EEXIST/);
  assert.equal(isMountPoint(path.join(cloneRoot, 'twice/merged')), true);
}));

test('createOverlayClone rejects a source that is not an overlay', withWork((work) => {
  assert.throws(() => createOverlayClone({ id: 'x', source: work, cloneRoot: path.join(work, 'clones') }), /not a mountpoint|not an overlay/);
}));
