import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSidecarEntries, SidecarWriter, type SidecarEntry } from '../../src/manager/volumes/sidecar.ts';

const stat = { mode: 0, uid: 0, gid: 0, atimeSec: 1n, atimeNsec: 2, mtimeSec: 3n, mtimeNsec: 4 };
const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'volumes', 'sidecar-memory.ts');

function scratchDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync('/var/tmp/sysrunc-sidecar-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function entriesOf(file: string): SidecarEntry[] {
  const fd = openSync(file, 'r');
  try {
    return [...readSidecarEntries(fd)];
  } finally {
    closeSync(fd);
  }
}

test('a sidecar naming a path outside its tree is refused', (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'legacy.json');
  for (const p of ['../etc/shadow', 'a/../../b', '/etc/passwd', 'a//b', '', './a', { b64: Buffer.from('../x').toString('base64') }]) {
    writeFileSync(file, JSON.stringify({ version: 1, whiteouts: [], xattrs: [{ path: p, xattrs: [['user.x', '']] }] }));
    assert.throws(() => entriesOf(file), /path/, JSON.stringify(p));
    writeFileSync(file, `{"sysrunc-sidecar":2}\n${JSON.stringify({ x: { path: p, xattrs: [['user.x', '']] } })}\n`);
    assert.throws(() => entriesOf(file), /line 2: .*path/, JSON.stringify(p));
  }
  const whiteoutAtRoot = { path: '.', uid: 0, gid: 0, mode: 0, atime: [0, 0], mtime: [0, 0], xattrs: [] };
  writeFileSync(file, `{"sysrunc-sidecar":2}\n${JSON.stringify({ w: whiteoutAtRoot })}\n`);
  assert.throws(() => entriesOf(file), /path/);
});

test('sidecar whiteouts and xattrs round-trip, non-UTF-8 names included', (t) => {
  const dir = scratchDir(t);
  const odd = Buffer.from([0x64, 0x2f, 0xff, 0xfe]); // "d/\xff\xfe"
  const w = new SidecarWriter(dir, 'side', dir);
  w.addWhiteout({ path: odd, stat, xattrs: [['user.a', Buffer.from([0, 255])]] });
  w.addXattrs(Buffer.from('d'), [['user.overlay.opaque', Buffer.from('y')], ['security.capability', Buffer.from('c')]]);
  w.addXattrs(Buffer.alloc(0), [['user.root', Buffer.from('r')]]);
  w.commit();
  assert.deepEqual(readdirSync(dir), ['side'], 'no temp file left');
  assert.deepEqual(entriesOf(path.join(dir, 'side')), [
    { kind: 'whiteout', whiteout: { path: odd, stat, xattrs: [['user.a', Buffer.from([0, 255])]] } },
    { kind: 'xattrs', path: Buffer.from('d'), xattrs: [['user.overlay.opaque', Buffer.from('y')]] }, // docker keeps security.capability itself
    { kind: 'xattrs', path: Buffer.alloc(0), xattrs: [['user.root', Buffer.from('r')]] },
  ]);
});

test('a sidecar in the old format (one JSON document, version 1) is still read', (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'legacy.json');
  const doc = {
    version: 1,
    whiteouts: [{ path: 'a/b', uid: 1, gid: 2, mode: 0o644, atime: [1, 2], mtime: [3, 4], xattrs: [['user.w', Buffer.from('w').toString('base64')]] }],
    xattrs: [{ path: '.', xattrs: [['trusted.overlay.opaque', Buffer.from('y').toString('base64')]] }],
  };
  writeFileSync(file, `${JSON.stringify(doc)}\n`);
  assert.deepEqual(entriesOf(file), [
    { kind: 'whiteout', whiteout: { path: Buffer.from('a/b'), stat: { mode: 0o644, uid: 1, gid: 2, atimeSec: 1n, atimeNsec: 2, mtimeSec: 3n, mtimeNsec: 4 }, xattrs: [['user.w', Buffer.from('w')]] } },
    { kind: 'xattrs', path: Buffer.alloc(0), xattrs: [['trusted.overlay.opaque', Buffer.from('y')]] },
  ]);
});

test('an entry whose xattrs exceed one line is split over several lines, and read back whole', (t) => {
  const dir = scratchDir(t);
  const big: Array<[string, Buffer]> = Array.from({ length: 40 }, (_, i) => [`user.x${i}`, Buffer.alloc(60_000, i)]);
  const w = new SidecarWriter(dir, 'side', dir);
  w.addXattrs(Buffer.from('f'), big);
  w.commit();
  const lines = readFileSync(path.join(dir, 'side'), 'utf8').split('\n').filter(Boolean);
  assert.ok(lines.length > 2 && lines.every((l) => l.length < 1024 * 1024), `${lines.length} lines`);
  const back = entriesOf(path.join(dir, 'side')).flatMap((e) => (e.kind === 'xattrs' ? e.xattrs : []));
  assert.deepEqual(back, big);
});

test('an abandoned or empty sidecar leaves no file; an empty one removes the old sidecar', (t) => {
  const dir = scratchDir(t);
  writeFileSync(path.join(dir, 'side'), 'old');
  new SidecarWriter(dir, 'side', dir).abandon();
  assert.deepEqual(readdirSync(dir), ['side']);
  new SidecarWriter(dir, 'side', dir).commit();
  assert.deepEqual(readdirSync(dir), []);
});

test('a line longer than the cap is refused', (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'side');
  writeFileSync(file, `{"sysrunc-sidecar":2}\n{"x":{"path":"a","xattrs":[["user.a","${'A'.repeat(2 * 1024 * 1024)}"]]}}\n`);
  assert.throws(() => entriesOf(file), /a line longer than 1048576 bytes/);
});

// Peak memory of a child that writes, then reads, a sidecar of 300k entries (about 60 MB on disk).
function peakMiB(mode: 'write' | 'read', file: string): number {
  const r = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, mode, file, '300000'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { peakGrowthMiB: number }).peakGrowthMiB;
}

test('writing and reading a sidecar of 300k entries grows the process by less than 64 MiB each (the whole file is 70 MiB)', (t) => {
  const dir = scratchDir(t);
  const file = path.join(dir, 'side');
  const wrote = peakMiB('write', file);
  const read = peakMiB('read', file);
  t.diagnostic(`sidecar ${(readFileSync(file).length / 1048576).toFixed(1)} MiB; peak growth: write ${wrote} MiB, read ${read} MiB`);
  assert.ok(wrote < 64, `write grew the process by ${wrote} MiB`);
  assert.ok(read < 64, `read grew the process by ${read} MiB`);
});
