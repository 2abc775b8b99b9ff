import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync, chownSync, existsSync, lchownSync, linkSync, lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  chownTreeByOffset, resumeInterruptedChown, shiftFileCaps, shiftPosixAcl, type IdOffset,
} from '../../src/manager/ownership/chown-tree.ts';
import { lgetxattr, lsetxattr } from '../../src/host/xattr.ts';
import {
  CAPS, capsV2NetRaw, capsV3NetRaw, removeDir, sh, snapshot, tempDir, type EntryState,
} from '../fixtures/ownership/tree.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OFF: IdOffset = { uid: 100000, gid: 200000 };

function withTree(fn: (root: string, work: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const work = tempDir('chown');
    const root = path.join(work, 'tree');
    mkdirSync(root);
    try {
      await fn(root, work);
    } finally {
      removeDir(work);
    }
  };
}

function file(p: string, uid: number, gid: number, mode: number, content = 'x'): void {
  writeFileSync(p, content);
  chownSync(p, uid, gid);
  chmodSync(p, mode);
}

/** A small rootfs: setuid/setgid binaries, file caps v2 and v3, ACLs, a symlink, a fifo. */
function buildRootfs(root: string): void {
  mkdirSync(path.join(root, 'bin'));
  file(path.join(root, 'bin/su'), 0, 0, 0o4755);
  file(path.join(root, 'bin/wall'), 0, 5, 0o2755);
  file(path.join(root, 'bin/ping'), 0, 0, 0o755);
  lsetxattr(path.join(root, 'bin/ping'), CAPS, capsV2NetRaw());
  file(path.join(root, 'bin/nsping'), 0, 0, 0o755);
  lsetxattr(path.join(root, 'bin/nsping'), CAPS, capsV3NetRaw(1000));
  mkdirSync(path.join(root, 'home/user'), { recursive: true });
  chownSync(path.join(root, 'home/user'), 1000, 1000);
  chmodSync(path.join(root, 'home/user'), 0o750);
  file(path.join(root, 'home/user/notes'), 1000, 1000, 0o600);
  mkdirSync(path.join(root, 'shared'));
  chmodSync(path.join(root, 'shared'), 0o2775);
  sh('setfacl', ['-m', 'u:1000:rwx,g:100:rx', path.join(root, 'shared')]);
  sh('setfacl', ['-d', '-m', 'u:1001:rw', path.join(root, 'shared')]);
  file(path.join(root, 'shared/doc'), 1000, 100, 0o640);
  sh('setfacl', ['-m', 'u:1002:r', path.join(root, 'shared/doc')]);
  mkdirSync(path.join(root, 'tmp'));
  chmodSync(path.join(root, 'tmp'), 0o1777);
  symlinkSync('bin/su', path.join(root, 'sulink'));
  sh('mkfifo', [path.join(root, 'fifo')]);
  file(path.join(root, 'nobody'), 65534, 65534, 0o644);
}

function shifted(states: Map<string, EntryState>, off: IdOffset): Map<string, Pick<EntryState, 'uid' | 'gid' | 'mode'>> {
  return new Map([...states].map(([k, e]) => [k, { uid: e.uid + off.uid, gid: e.gid + off.gid, mode: e.mode }]));
}

function owners(states: Map<string, EntryState>): Map<string, Pick<EntryState, 'uid' | 'gid' | 'mode'>> {
  return new Map([...states].map(([k, e]) => [k, { uid: e.uid, gid: e.gid, mode: e.mode }]));
}

function journal(work: string): string {
  return path.join(work, 'chown.journal');
}

test('shift moves every owner by the offset and keeps all mode bits', withTree((root, work) => {
  buildRootfs(root);
  const before = snapshot(root);
  const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.deepEqual(owners(snapshot(root)), shifted(before, OFF));
  assert.equal(report.entries, before.size);
  assert.equal(report.changed, before.size);
}));

test('shift keeps setuid and setgid bits that chown clears', withTree((root, work) => {
  buildRootfs(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.equal(statSync(path.join(root, 'bin/su')).mode & 0o7777, 0o4755);
  assert.equal(statSync(path.join(root, 'bin/wall')).mode & 0o7777, 0o2755);
  assert.equal(statSync(path.join(root, 'shared')).mode & 0o7777, 0o2775);
}));

test('shift restores v2 file caps and shifts the rootid of v3 file caps', withTree((root, work) => {
  buildRootfs(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.deepEqual(lgetxattr(path.join(root, 'bin/ping'), CAPS), capsV2NetRaw());
  assert.deepEqual(lgetxattr(path.join(root, 'bin/nsping'), CAPS), capsV3NetRaw(1000 + OFF.uid));
}));

test('shift rewrites the user and group ids of access and default ACLs', withTree((root, work) => {
  buildRootfs(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  const dirAcl = sh('getfacl', ['-n', '-p', path.join(root, 'shared')]);
  assert.match(dirAcl, new RegExp(`^user:${1000 + OFF.uid}:rwx$`, 'm'));
  assert.match(dirAcl, new RegExp(`^group:${100 + OFF.gid}:r-x$`, 'm'));
  assert.match(dirAcl, new RegExp(`^default:user:${1001 + OFF.uid}:rw-$`, 'm'));
  assert.match(sh('getfacl', ['-n', '-p', path.join(root, 'shared/doc')]), new RegExp(`^user:${1002 + OFF.uid}:r--$`, 'm'));
}));

test('shift then revert restores exact ownership, mode bits, ACLs and file caps', withTree((root, work) => {
  buildRootfs(root);
  const before = snapshot(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'revert' });
  assert.deepEqual(snapshot(root), before);
}));

test('a hardlinked file is chowned once', withTree((root, work) => {
  file(path.join(root, 'a'), 1000, 1000, 0o644);
  linkSync(path.join(root, 'a'), path.join(root, 'b'));
  const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.equal(report.hardlinkAliases, 1);
  assert.equal(report.changed, 2); // the root dir and the inode
  const st = lstatSync(path.join(root, 'b'));
  assert.deepEqual([st.uid, st.gid], [1000 + OFF.uid, 1000 + OFF.gid]);
}));

test('a symlink to /etc is lchowned and /etc is left untouched', withTree((root, work) => {
  symlinkSync('/etc', path.join(root, 'etc'));
  symlinkSync('/etc/passwd', path.join(root, 'passwd'));
  const pick = (p: string): number[] => {
    const st = lstatSync(p);
    return [st.uid, st.gid, st.mode, st.ctimeMs];
  };
  const etc = pick('/etc');
  const passwd = pick('/etc/passwd');
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.deepEqual(pick('/etc'), etc);
  assert.deepEqual(pick('/etc/passwd'), passwd);
  for (const link of ['etc', 'passwd']) {
    const st = lstatSync(path.join(root, link));
    assert.deepEqual([st.uid, st.gid], [OFF.uid, OFF.gid]);
  }
}));

test('a bind mount inside the tree is not crossed', withTree((root, work) => {
  const outside = path.join(work, 'outside');
  mkdirSync(path.join(outside, 'sub'), { recursive: true });
  file(path.join(outside, 'sub/f'), 0, 0, 0o644);
  mkdirSync(path.join(root, 'mnt'));
  sh('mount', ['--bind', outside, path.join(root, 'mnt')]);
  try {
    const before = snapshot(outside);
    const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
    assert.deepEqual(snapshot(outside), before);
    assert.equal(report.skippedOtherMounts, 1);
  } finally {
    sh('umount', [path.join(root, 'mnt')]);
  }
}));

test('a file bind mount inside the tree is not chowned', withTree((root, work) => {
  const outside = path.join(work, 'hosts');
  file(outside, 0, 0, 0o644);
  file(path.join(root, 'hosts'), 0, 0, 0o644);
  sh('mount', ['--bind', outside, path.join(root, 'hosts')]);
  try {
    const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
    assert.equal(lstatSync(outside).uid, 0);
    assert.equal(report.skippedOtherMounts, 1);
  } finally {
    sh('umount', [path.join(root, 'hosts')]);
  }
}));

test('ids outside the range are left alone and counted', withTree((root, work) => {
  file(path.join(root, 'far'), 70000, 1000, 0o644);
  const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift', range: { size: 65536 } });
  const st = lstatSync(path.join(root, 'far'));
  assert.deepEqual([st.uid, st.gid], [70000, 1000 + OFF.gid]);
  assert.equal(report.outOfRange, 1);
}));

test('running the same shift twice shifts once', withTree((root, work) => {
  buildRootfs(root);
  const before = snapshot(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  const second = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.equal(second.changed, 0);
  assert.deepEqual(owners(snapshot(root)), shifted(before, OFF));
}));

test('an offset below the range size is rejected', withTree((root, work) => {
  assert.throws(
    () => chownTreeByOffset(root, { uid: 1000, gid: 200000 }, { journalPath: journal(work), direction: 'shift' }),
    /uid offset 1000 is below the range size 65536/,
  );
}));

test('the journal is removed once the walk completes', withTree((root, work) => {
  buildRootfs(root);
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.equal(existsSync(journal(work)), false);
}));

test('names that are not valid UTF-8 are chowned', withTree((root, work) => {
  const name = Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]);
  writeFileSync(name, 'x');
  chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' });
  assert.equal(lstatSync(name).uid, OFF.uid);
}));

test('shiftPosixAcl maps ACL_USER and ACL_GROUP ids only', () => {
  const acl = Buffer.alloc(4 + 8 * 4);
  acl.writeUInt32LE(2, 0);
  const entries: [number, number][] = [[0x01, 0xffffffff], [0x02, 1000], [0x08, 100], [0x20, 0xffffffff]];
  entries.forEach(([tag, id], i) => {
    acl.writeUInt16LE(tag, 4 + i * 8);
    acl.writeUInt16LE(7, 6 + i * 8);
    acl.writeUInt32LE(id, 8 + i * 8);
  });
  const out = shiftPosixAcl(acl, OFF, 65536, 'shift').value;
  assert.ok(out);
  assert.deepEqual([0, 1, 2, 3].map((i) => out.readUInt32LE(8 + i * 8)), [0xffffffff, 1000 + OFF.uid, 100 + OFF.gid, 0xffffffff]);
});

test('shiftFileCaps writes a rootid reverted to 0 as v2 caps', () => {
  const back = shiftFileCaps(capsV3NetRaw(OFF.uid), OFF.uid, 65536, 'revert').value;
  assert.deepEqual(back, capsV2NetRaw());
});

// --- interruption -----------------------------------------------------------

/** 1500 files in 15 dirs, every 10th setuid, every 15th with file caps. */
function buildWideTree(root: string): void {
  for (let d = 0; d < 15; d++) {
    const dir = path.join(root, `d${d}`);
    mkdirSync(dir);
    for (let f = 0; f < 100; f++) {
      const p = path.join(dir, `f${f}`);
      file(p, f % 3 === 0 ? 0 : 1000 + f, f % 2 === 0 ? 0 : 1000, f % 10 === 0 ? 0o4755 : 0o644);
      if (f % 15 === 0) lsetxattr(p, CAPS, capsV2NetRaw());
    }
  }
}

async function runChildUntilStopped(root: string, journalPath: string, stopAt: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/ownership/chown-child.ts', root, journalPath, `${OFF.uid}:${OFF.gid}`, String(stopAt)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('stopped')) resolve();
      if (out.includes('finished')) reject(new Error('child finished before it was stopped'));
    });
    child.on('exit', () => reject(new Error(`child exited early: ${out}`)));
  });
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
}

function countShifted(states: Map<string, EntryState>, before: Map<string, EntryState>): number {
  return [...states].filter(([k, e]) => e.uid === (before.get(k)?.uid ?? -1) + OFF.uid).length;
}

function withCaps(states: Map<string, EntryState>): Map<string, Pick<EntryState, 'uid' | 'gid' | 'mode' | 'caps'>> {
  return new Map([...states].map(([k, e]) => [k, { uid: e.uid, gid: e.gid, mode: e.mode, caps: e.caps }]));
}

test('a chown killed midway ends fully shifted after resume', withTree(async (root, work) => {
  buildWideTree(root);
  const before = snapshot(root);
  await runChildUntilStopped(root, journal(work), 700);
  const mid = countShifted(snapshot(root), before);
  assert.ok(mid > 0 && mid < before.size, `expected a partly shifted tree, ${mid} of ${before.size} shifted`);

  const report = resumeInterruptedChown(journal(work));
  assert.ok(report);
  const expected = new Map([...before].map(([k, e]) => [k, { uid: e.uid + OFF.uid, gid: e.gid + OFF.gid, mode: e.mode, caps: e.caps }]));
  assert.deepEqual(withCaps(snapshot(root)), expected);
  assert.equal(existsSync(journal(work)), false);
}));

test('a chown killed midway ends fully unshifted after rollback', withTree(async (root, work) => {
  buildWideTree(root);
  const before = snapshot(root);
  await runChildUntilStopped(root, journal(work), 700);
  resumeInterruptedChown(journal(work), { action: 'rollback' });
  assert.deepEqual(snapshot(root), before);
}));

test('a crash between chown and restoring setuid and caps is repaired on resume', withTree((root, work) => {
  const p = path.join(root, 'ping');
  file(p, 0, 0, 0o4755);
  lsetxattr(p, CAPS, capsV2NetRaw());
  const ino = lstatSync(p).ino;
  // The state a crash right after lchown leaves: journal with the entry's
  // original metadata, owner shifted, setuid bit and caps cleared by the kernel.
  const begin = { op: 'begin', v: 1, root: path.resolve(root), direction: 'shift', offset: OFF, size: 65536 };
  const special = { op: 'special', path: 'ping', ino, uid: 0, gid: 0, mode: 0o4755, caps: capsV2NetRaw().toString('base64') };
  writeFileSync(journal(work), `${JSON.stringify(begin)}\n${JSON.stringify(special)}\n{"op":"progr`);
  lchownSync(p, OFF.uid, OFF.gid);
  assert.equal(lstatSync(p).mode & 0o7777, 0o755);
  assert.equal(lgetxattr(p, CAPS), undefined);

  resumeInterruptedChown(journal(work));
  const st = lstatSync(p);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [OFF.uid, OFF.gid, 0o4755]);
  assert.deepEqual(lgetxattr(p, CAPS), capsV2NetRaw());
}));

test('a pending journal for another offset is refused', withTree((root, work) => {
  const begin = { op: 'begin', v: 1, root: path.resolve(root), direction: 'shift', offset: { uid: 300000, gid: 300000 }, size: 65536 };
  writeFileSync(journal(work), `${JSON.stringify(begin)}\n`);
  assert.throws(
    () => chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' }),
    /an interrupted shift of .* by 300000:300000 is pending; resume it first/,
  );
}));

test('resume without a journal does nothing', withTree((_root, work) => {
  assert.equal(resumeInterruptedChown(journal(work)), undefined);
}));

test('a failed chown names the operation, errno and path and keeps the journal', withTree((root, work) => {
  const p = path.join(root, 'immutable');
  file(p, 0, 0, 0o644);
  sh('chattr', ['+i', p]);
  try {
    assert.throws(
      () => chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift' }),
      { message: `lchown ${p}: EPERM (Operation not permitted)` },
    );
    assert.equal(existsSync(journal(work)), true);
  } finally {
    sh('chattr', ['-i', p]);
  }
  resumeInterruptedChown(journal(work));
  assert.equal(lstatSync(p).uid, OFF.uid);
}));

/** A tree with a store-volume copy at var/lib/docker (host-root owned) beside ordinary entries. */
function buildWithStoreCopy(root: string): void {
  mkdirSync(path.join(root, 'etc'));
  for (let f = 0; f < 20; f++) file(path.join(root, 'etc', `f${f}`), 0, 0, 0o644);
  mkdirSync(path.join(root, 'var/lib/docker/overlay2'), { recursive: true });
  file(path.join(root, 'var/lib/docker/overlay2/blob'), 0, 0, 0o644);
  file(path.join(root, 'var/lib/docker/overlay2/user-file'), 1000, 1000, 0o600);
}

const ctimes = (dir: string): string[] =>
  ['', 'overlay2', 'overlay2/blob', 'overlay2/user-file'].map((p) => {
    const st = lstatSync(path.join(dir, p), { bigint: true });
    return `${p} ${st.uid}:${st.gid} ${st.ctimeNs}`;
  });

test('an excluded directory and everything below it keep their owners and ctimes', withTree((root, work) => {
  buildWithStoreCopy(root);
  const docker = path.join(root, 'var/lib/docker');
  const before = ctimes(docker);
  const report = chownTreeByOffset(root, OFF, { journalPath: journal(work), direction: 'shift', exclude: ['/var/lib/docker'] });
  assert.deepEqual(ctimes(docker), before);
  assert.equal(report.skippedExcluded, 1);
  assert.equal(statSync(path.join(root, 'etc/f0')).uid, OFF.uid, 'the rest is shifted');
  assert.equal(statSync(path.join(root, 'var/lib')).uid, OFF.uid, 'parents of the excluded directory are shifted');
}));

test('a resumed chown leaves the directories the interrupted run excluded alone', withTree((root, work) => {
  buildWithStoreCopy(root);
  const docker = path.join(root, 'var/lib/docker');
  const before = ctimes(docker);
  assert.throws(() => chownTreeByOffset(root, OFF, {
    journalPath: journal(work), direction: 'shift', exclude: ['var/lib/docker'], progressEvery: 1,
    onProgress: (n) => {
      if (n === 3) throw new Error('interrupted');
    },
  }), /interrupted/);
  assert.ok(existsSync(journal(work)), 'the journal stays for the resume');
  resumeInterruptedChown(journal(work));
  assert.deepEqual(ctimes(docker), before);
  assert.equal(statSync(path.join(root, 'etc/f19')).uid, OFF.uid);
}));
