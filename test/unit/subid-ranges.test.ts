import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_SYSRUNC_RANGE_MIN_START,
  DEFAULT_SYSRUNC_RANGE_SIZE,
  ensureSysruncRange,
  parseSubidFile,
  readSubidFile,
  SubidFileError,
  type EnsureSysruncRangeOptions,
  type IdRange,
} from '../../src/manager/subid-ranges.ts';

const root = mkdtempSync(join(tmpdir(), 'sysrunc-subid-ranges-'));
after(() => rmSync(root, { recursive: true, force: true }));

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\nalice:x:1000:\n';

interface HostFiles {
  subuid?: string;
  subgid?: string;
  passwd?: string;
  group?: string;
}

/** Temp copies of the host's id databases; never the real /etc files. */
function hostFiles(files: HostFiles): Required<Pick<EnsureSysruncRangeOptions, 'subuidPath' | 'subgidPath' | 'passwdPath' | 'groupPath'>> {
  const dir = mkdtempSync(join(root, 'etc-'));
  const paths = {
    subuidPath: join(dir, 'subuid'),
    subgidPath: join(dir, 'subgid'),
    passwdPath: join(dir, 'passwd'),
    groupPath: join(dir, 'group'),
  };
  writeFileSync(paths.passwdPath, files.passwd ?? PASSWD);
  writeFileSync(paths.groupPath, files.group ?? GROUP);
  if (files.subuid !== undefined) writeFileSync(paths.subuidPath, files.subuid);
  if (files.subgid !== undefined) writeFileSync(paths.subgidPath, files.subgid);
  return paths;
}

function overlaps(a: IdRange, b: IdRange): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

function assertSubidError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof SubidFileError && message.test(err.message));
}

test('parseSubidFile reads name and numeric-uid owners', () => {
  assert.deepEqual(parseSubidFile('alice:100000:65536\n1001:165536:65536\n', 'subuid'), [
    { owner: 'alice', start: 100000, size: 65536, line: 1 },
    { owner: '1001', start: 165536, size: 65536, line: 2 },
  ]);
});

test('parseSubidFile skips blank and comment lines but keeps real line numbers', () => {
  const entries = parseSubidFile('# managed by hand\n\n   \nalice:100000:65536\n', 'subuid');
  assert.deepEqual(entries, [{ owner: 'alice', start: 100000, size: 65536, line: 4 }]);
});

test('parseSubidFile accepts a range covering the whole id space', () => {
  assert.deepEqual(parseSubidFile('root:0:4294967296\n', 'subuid'), [{ owner: 'root', start: 0, size: 2 ** 32, line: 1 }]);
});

test('parseSubidFile rejects malformed lines naming file:line', () => {
  const cases = [
    'alice:100000',
    'alice:100000:65536:extra',
    ':100000:65536',
    'alice:abc:65536',
    'alice:-5:65536',
    'alice:100000:1.5',
    'alice:100000:',
    'alice:4294967295:2',
  ];
  for (const bad of cases) {
    assertSubidError(() => parseSubidFile(`bob:1:1\n# c\n${bad}\n`, '/etc/subuid'), /^\/etc\/subuid:3: malformed entry/);
  }
});

test('readSubidFile treats a missing file as empty', () => {
  assert.deepEqual(readSubidFile(join(root, 'no-such-subuid')), []);
});

test('readSubidFile names the file in parse errors', () => {
  const paths = hostFiles({ subuid: 'alice:1\n' });
  assertSubidError(() => readSubidFile(paths.subuidPath), new RegExp(`^${paths.subuidPath}:1: malformed`));
});

test('ensureSysruncRange returns existing sysrunc ranges without touching the files', () => {
  const subuid = 'alice:100000:65536\nsysrunc:300000000:65536\nsysrunc:200000000:131072\n';
  const subgid = 'sysrunc:400000000:65536\n';
  const paths = hostFiles({ subuid, subgid });
  const result = ensureSysruncRange(paths);
  assert.deepEqual(result, {
    uidRanges: [
      { start: 200000000, size: 131072 },
      { start: 300000000, size: 65536 },
    ],
    gidRanges: [{ start: 400000000, size: 65536 }],
    added: false,
  });
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), subuid);
  assert.equal(readFileSync(paths.subgidPath, 'utf8'), subgid);
});

test('ensureSysruncRange recognises entries owned by the numeric uid of sysrunc', () => {
  const passwd = `${PASSWD}sysrunc:x:997:997::/nonexistent:/usr/sbin/nologin\n`;
  const paths = hostFiles({ passwd, subuid: '997:500000000:65536\n', subgid: 'sysrunc:500000000:65536\n' });
  const result = ensureSysruncRange(paths);
  assert.equal(result.added, false);
  assert.deepEqual(result.uidRanges, [{ start: 500000000, size: 65536 }]);
});

test('ensureSysruncRange appends the same new range to both files, keeping their content', () => {
  const subuid = '# comment\nalice:100000:65536\n';
  const subgid = 'alice:100000:65536\n';
  const paths = hostFiles({ subuid, subgid });
  const result = ensureSysruncRange(paths);
  const range = { start: DEFAULT_SYSRUNC_RANGE_MIN_START, size: DEFAULT_SYSRUNC_RANGE_SIZE };
  assert.deepEqual(result, { uidRanges: [range], gidRanges: [range], added: true });
  const line = `sysrunc:${range.start}:${range.size}\n`;
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), subuid + line);
  assert.equal(readFileSync(paths.subgidPath, 'utf8'), subgid + line);
});

test('ensureSysruncRange skips other users\' entries and host uids/gids when picking a range', () => {
  const base = DEFAULT_SYSRUNC_RANGE_MIN_START;
  const subuid = `alice:${base}:65536\n`;
  const subgid = `alice:${base + 100000}:65536\n`;
  const passwd = `${PASSWD}weird:x:${base + 200000}:100::/:/bin/false\n`;
  const group = `${GROUP}weirdg:x:${base + 250000}:\n`;
  const paths = hostFiles({ subuid, subgid, passwd, group });
  const result = ensureSysruncRange({ ...paths, wantSize: 65536 });
  const [range] = result.uidRanges;
  assert.ok(range);
  assert.deepEqual(result.gidRanges, [range]);
  const blocked = [
    ...readSubidFile(paths.subuidPath).filter((e) => e.owner !== 'sysrunc'),
    ...readSubidFile(paths.subgidPath).filter((e) => e.owner !== 'sysrunc'),
    { start: base + 200000, size: 1 },
    { start: base + 250000, size: 1 },
  ];
  for (const b of blocked) assert.ok(!overlaps(range, b), `${JSON.stringify(range)} overlaps ${JSON.stringify(b)}`);
  assert.deepEqual(range, { start: base + 250001, size: 65536 });
});

test('ensureSysruncRange is idempotent', () => {
  const paths = hostFiles({ subuid: 'alice:100000:65536\n', subgid: 'alice:100000:65536\n' });
  const first = ensureSysruncRange(paths);
  const subuidAfterFirst = readFileSync(paths.subuidPath, 'utf8');
  const second = ensureSysruncRange(paths);
  assert.deepEqual(second, { ...first, added: false });
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), subuidAfterFirst);
});

test('ensureSysruncRange creates missing subuid and subgid files', () => {
  const paths = hostFiles({});
  const result = ensureSysruncRange({ ...paths, wantSize: 65536 });
  assert.equal(result.added, true);
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), `sysrunc:${DEFAULT_SYSRUNC_RANGE_MIN_START}:65536\n`);
  assert.equal(readFileSync(paths.subgidPath, 'utf8'), `sysrunc:${DEFAULT_SYSRUNC_RANGE_MIN_START}:65536\n`);
});

test('ensureSysruncRange mirrors an existing subuid range into subgid when it is free there', () => {
  const paths = hostFiles({ subuid: 'sysrunc:700000000:131072\n', subgid: 'alice:100000:65536\n' });
  const result = ensureSysruncRange(paths);
  assert.deepEqual(result, {
    uidRanges: [{ start: 700000000, size: 131072 }],
    gidRanges: [{ start: 700000000, size: 131072 }],
    added: true,
  });
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), 'sysrunc:700000000:131072\n');
  assert.equal(readFileSync(paths.subgidPath, 'utf8'), 'alice:100000:65536\nsysrunc:700000000:131072\n');
});

test('ensureSysruncRange adds a newline before its entry when the file lacks one', () => {
  const paths = hostFiles({ subuid: 'alice:100000:65536', subgid: '' });
  ensureSysruncRange({ ...paths, wantSize: 65536 });
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), `alice:100000:65536\nsysrunc:${DEFAULT_SYSRUNC_RANGE_MIN_START}:65536\n`);
});

test('ensureSysruncRange keeps the mode of the files it edits', () => {
  const paths = hostFiles({ subuid: '', subgid: '' });
  chmodSync(paths.subuidPath, 0o644);
  ensureSysruncRange(paths);
  assert.equal(statSync(paths.subuidPath).mode & 0o777, 0o644);
});

test('ensureSysruncRange fails clearly when no free range fits below the limit', () => {
  const paths = hostFiles({ subuid: `alice:1000:${2 ** 31}\n`, subgid: '' });
  assertSubidError(() => ensureSysruncRange({ ...paths, minStart: 100000 }), /^no free range of 67108864 ids/);
  assert.equal(readFileSync(paths.subgidPath, 'utf8'), '');
});

test('ensureSysruncRange refuses to edit while a live process holds shadow\'s lock', () => {
  const paths = hostFiles({ subuid: '', subgid: '' });
  writeFileSync(`${paths.subuidPath}.lock`, String(process.ppid));
  assertSubidError(() => ensureSysruncRange(paths), /is held by running process/);
  assert.equal(readFileSync(paths.subuidPath, 'utf8'), '');
});

test('ensureSysruncRange breaks a lock left by a dead process and removes its own locks', () => {
  const paths = hostFiles({ subuid: '', subgid: '' });
  writeFileSync(`${paths.subuidPath}.lock`, '2147483646');
  assert.equal(ensureSysruncRange(paths).added, true);
  assert.equal(existsSync(`${paths.subuidPath}.lock`), false);
  assert.equal(existsSync(`${paths.subgidPath}.lock`), false);
});

test('ensureSysruncRange rejects a minimum start of 0 so host root is never included', () => {
  const paths = hostFiles({ subuid: '', subgid: '' });
  assertSubidError(() => ensureSysruncRange({ ...paths, minStart: 0 }), /id 0 is host root/);
});
