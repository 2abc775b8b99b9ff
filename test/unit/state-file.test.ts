import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { readJson, StateFileError, writeFileAtomic, writeJsonAtomic } from '../../src/manager/state-file.ts';

const schema = z.object({ name: z.string(), count: z.number().int() });

const root = mkdtempSync(join(tmpdir(), 'sysrunc-state-file-'));
after(() => rmSync(root, { recursive: true, force: true }));

function tempDir(): string {
  return mkdtempSync(join(root, 'case-'));
}

test('readJson returns what writeJsonAtomic wrote', () => {
  const path = join(tempDir(), 'state.json');
  writeJsonAtomic(path, { name: 'a', count: 3 });
  assert.deepEqual(readJson(path, schema), { name: 'a', count: 3 });
});

test('writeJsonAtomic creates the file with mode 0600 regardless of umask', () => {
  const path = join(tempDir(), 'state.json');
  const old = process.umask(0);
  try {
    writeJsonAtomic(path, { name: 'a', count: 1 });
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('writeJsonAtomic replaces existing content and leaves no temp file behind', () => {
  const dir = tempDir();
  const path = join(dir, 'state.json');
  writeJsonAtomic(path, { name: 'old', count: 1 });
  writeJsonAtomic(path, { name: 'new', count: 2 });
  assert.deepEqual(readJson(path, schema), { name: 'new', count: 2 });
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

test('writeJsonAtomic rejects a value JSON cannot represent and keeps the old file', () => {
  const path = join(tempDir(), 'state.json');
  writeJsonAtomic(path, { name: 'keep', count: 1 });
  assert.throws(() => writeJsonAtomic(path, undefined), TypeError);
  assert.deepEqual(readJson(path, schema), { name: 'keep', count: 1 });
});

test('writeFileAtomic applies the requested mode', () => {
  const path = join(tempDir(), 'subuid');
  writeFileAtomic(path, 'a:1:2\n', { mode: 0o644 });
  assert.equal(statSync(path).mode & 0o777, 0o644);
  assert.equal(readFileSync(path, 'utf8'), 'a:1:2\n');
});

test('readJson returns undefined when the file does not exist', () => {
  assert.equal(readJson(join(tempDir(), 'missing.json'), schema), undefined);
});

test('readJson on invalid JSON throws a one-line error naming the file', () => {
  const path = join(tempDir(), 'state.json');
  writeFileSync(path, '{"name": "a", "cou');
  assert.throws(
    () => readJson(path, schema),
    (err: unknown) =>
      err instanceof StateFileError &&
      err.path === path &&
      err.message.startsWith(`${path}: corrupt state file: invalid JSON`) &&
      !err.message.includes('\n'),
  );
});

test('readJson on a schema mismatch throws a one-line error naming the file and the field', () => {
  const path = join(tempDir(), 'state.json');
  writeFileSync(path, JSON.stringify({ name: 'a', count: 'three' }));
  assert.throws(
    () => readJson(path, schema),
    (err: unknown) =>
      err instanceof StateFileError &&
      err.message.startsWith(`${path}: corrupt state file: count:`) &&
      !err.message.includes('\n'),
  );
});
