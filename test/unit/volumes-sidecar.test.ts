import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sidecar, SidecarWriter } from '../../src/manager/volumes/sidecar.ts';

const stat = { mode: 0, uid: 0, gid: 0, atimeSec: 1n, atimeNsec: 2, mtimeSec: 3n, mtimeNsec: 4 };

test('a sidecar naming a path outside its tree is refused', () => {
  for (const p of ['../etc/shadow', 'a/../../b', '/etc/passwd', 'a//b', '', './a', { b64: Buffer.from('../x').toString('base64') }]) {
    const doc = { version: 1, whiteouts: [], xattrs: [{ path: p, xattrs: [['user.x', '']] }] };
    assert.throws(() => Sidecar.parse(JSON.stringify(doc)), /path/, JSON.stringify(p));
  }
  const whiteoutAtRoot = { path: '.', uid: 0, gid: 0, mode: 0, atime: [0, 0], mtime: [0, 0], xattrs: [] };
  assert.throws(() => Sidecar.parse(JSON.stringify({ version: 1, whiteouts: [whiteoutAtRoot], xattrs: [] })), /path/);
});

test('sidecar whiteouts and xattrs round-trip, non-UTF-8 names included', () => {
  const odd = Buffer.from([0x64, 0x2f, 0xff, 0xfe]); // "d/\xff\xfe"
  const w = new SidecarWriter();
  w.addWhiteout({ path: odd, stat, xattrs: [['user.a', Buffer.from([0, 255])]] });
  w.addXattrs(Buffer.from('d'), [['user.overlay.opaque', Buffer.from('y')], ['security.capability', Buffer.from('c')]]);
  w.addXattrs(Buffer.alloc(0), [['user.root', Buffer.from('r')]]);
  const parsed = Sidecar.parse(w.toJson());
  assert.deepEqual(parsed.xattrsOf(Buffer.alloc(0)), [['user.root', Buffer.from('r')]], 'the root has xattrs too');
  assert.deepEqual(parsed.whiteoutsIn(Buffer.from('d')), [{ path: odd, stat, xattrs: [['user.a', Buffer.from([0, 255])]] }]);
  assert.deepEqual(parsed.xattrsOf(Buffer.from('d')), [['user.overlay.opaque', Buffer.from('y')]], 'docker keeps security.capability itself');
});
