// Files the manager reads from an image (daemon.json, a store volume's sidecar) are the image's
// choice: a device or FIFO there must never be opened, only refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Koffi from 'koffi';
import { mknod, S_IFCHR, S_IFIFO } from '../../src/host/fs-native.ts';
import { withRootfsSync } from '../../src/host/in-root.ts';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'host', 'read-in-root.ts');

function rootfsWith(t: { after(fn: () => void): void }, make: (file: string) => void): string {
  const root = mkdtempSync('/var/tmp/sysrunc-in-root-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'etc', 'docker'), { recursive: true });
  make(path.join(root, 'etc', 'docker', 'daemon.json'));
  return root;
}

/** A pty pair's master (kept open by the test) and its slave's device numbers. */
function openPty(): { master: number; major: number; minor: number } {
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  const c = koffi.load('libc.so.6');
  const posixOpenpt = c.func('int posix_openpt(int flags)');
  const grantpt = c.func('int grantpt(int fd)');
  const unlockpt = c.func('int unlockpt(int fd)');
  const ptsname = c.func('const char *ptsname(int fd)');
  const master = posixOpenpt(0o2 | 0o400 /* O_RDWR | O_NOCTTY */) as number;
  assert.ok(master >= 0, 'posix_openpt');
  assert.equal(grantpt(master), 0);
  assert.equal(unlockpt(master), 0);
  const rdev = statSync(ptsname(master) as string).rdev;
  return { master, major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

test('a tty at an image\'s daemon.json is refused without being opened: it never becomes the manager\'s controlling terminal', (t) => {
  const pty = openPty();
  t.after(() => closeSync(pty.master));
  const root = rootfsWith(t, (file) => assert.equal(mknod(Buffer.from(file), S_IFCHR | 0o666, pty.major, pty.minor), 0));
  // A session leader with no controlling terminal acquires any tty it opens without O_NOCTTY.
  const r = spawnSync('setsid', ['--wait', process.execPath, '--import', 'tsx', FIXTURE, root, '/etc/docker/daemon.json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { outcome: string; ttyNr: number };
  assert.match(report.outcome, /not a regular file/);
  assert.equal(report.ttyNr, 0, 'the tty was opened: it became the reader\'s controlling terminal');
});

test('a FIFO at an image\'s daemon.json is refused as not a regular file', (t) => {
  const root = rootfsWith(t, (file) => assert.equal(mknod(Buffer.from(file), S_IFIFO | 0o644, 0, 0), 0));
  assert.throws(() => withRootfsSync(root, (r) => r.readFile('/etc/docker/daemon.json', 1024)), /not a regular file/);
});

test('a regular daemon.json is read whole', (t) => {
  const root = rootfsWith(t, (file) => writeFileSync(file, '{"data-root":"/x"}'));
  assert.equal(withRootfsSync(root, (r) => r.readFile('/etc/docker/daemon.json', 1024))?.toString(), '{"data-root":"/x"}');
});

test('a daemon.json larger than the cap is refused', (t) => {
  const root = rootfsWith(t, (file) => writeFileSync(file, 'x'.repeat(2000)));
  assert.throws(() => withRootfsSync(root, (r) => r.readFile('/etc/docker/daemon.json', 1024)), /larger than 1024 bytes/);
});
