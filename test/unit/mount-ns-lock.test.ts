// The overlay swap's lock (src/host/mount-ns-lock.ts, issue 25): the manager mounts the incoming
// overlay over an upper dir holding <run base>/mount-ns.lock exclusively; runc's mount namespace
// (dist/sysrunc-bundle-exec) holds it shared only from its unshare until its copies of other
// containers' overlays are detached, never while runc runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MOUNT_NS_LOCK_FILE, withMountNamespaceLock } from '../../src/host/mount-ns-lock.ts';

const BUNDLE_EXEC = path.resolve('dist/sysrunc-bundle-exec');

/** Whether another process could take the lock shared right now (flock -n: never waits). */
function sharedLockFree(file: string): boolean {
  return spawnSync('flock', ['-n', '-s', file, 'true']).status === 0;
}

test('the manager holds the run base lock exclusively while it mounts, and releases it after', (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'sysrunc-mount-ns-lock-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const file = path.join(base, MOUNT_NS_LOCK_FILE);
  const during = withMountNamespaceLock(base, () => sharedLockFree(file));
  assert.equal(during, false, 'a runc namespace could copy mounts during the swap');
  assert.equal(sharedLockFree(file), true);
});

test('bundle-exec takes the lock at its run base and has released it when runc starts', { skip: !existsSync(BUNDLE_EXEC) && 'dist/sysrunc-bundle-exec not built' }, (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'sysrunc-mount-ns-lock-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const prepared = path.join(base, 'bundles', 'c1');
  const caller = path.join(base, 'caller');
  mkdirSync(prepared, { recursive: true });
  mkdirSync(caller);
  writeFileSync(path.join(prepared, 'config.json'), '{"prepared":true}');
  writeFileSync(path.join(caller, 'config.json'), '{"caller":true}');
  const file = path.join(base, MOUNT_NS_LOCK_FILE);
  // The "runtime" takes the lock exclusively without waiting: it gets it only if bundle-exec let go.
  const r = spawnSync(BUNDLE_EXEC, [path.join(prepared, 'config.json'), caller, 'flock', '-n', '-x', file, 'cat', path.join(caller, 'config.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '{"prepared":true}');
  assert.equal(existsSync(file), true);
});
