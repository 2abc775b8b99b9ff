import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SyscallError, errnoName, libc, sysFail } from '../../src/host/libc.ts';

test('SyscallError message names syscall, path, errno code and strerror text', () => {
  libc();
  const err = new SyscallError('open_tree', '/var/lib/x', 1);
  assert.equal(err.message, 'open_tree /var/lib/x: EPERM (Operation not permitted)');
  assert.equal(err.code, 'EPERM');
  assert.equal(err.errno, 1);
  assert.equal(err.syscall, 'open_tree');
  assert.equal(err.path, '/var/lib/x');
});

test('sysFail reports the errno of the call that just failed', () => {
  assert.equal(libc().close(-1), -1);
  const err = sysFail('close', 'fd -1');
  assert.equal(err.message, 'close fd -1: EBADF (Bad file descriptor)');
});

test('errno names cover errnos libuv does not know', () => {
  assert.equal(errnoName(8), 'ENOEXEC');
  assert.equal(errnoName(75), 'EOVERFLOW');
  assert.equal(errnoName(95), 'EOPNOTSUPP');
  assert.equal(errnoName(4095), 'E4095');
});

test('importing the host modules does not load koffi', () => {
  const script = `
    import { createRequire } from 'node:module';
    await import('./src/host/mount.ts');
    await import('./src/host/userns.ts');
    await import('./src/host/idmap-probe.ts');
    const { libcLoaded } = await import('./src/host/libc.ts');
    const cached = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/koffi/'));
    console.log(JSON.stringify({ loaded: libcLoaded(), cached }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(out), { loaded: false, cached: false });
});
