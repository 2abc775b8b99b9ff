// Issue 5: a plain directory rootfs (a runc bundle, no overlay) cannot be cloned: in chown mode the
// manager shifts it in place at create and shifts it back at delete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, symlinkSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { startFixture, type Fixture } from '../oci-conformance/fixture.ts';
import { mountsUnder, recordsOnceReleased } from '../oci-conformance/helpers/host-state.ts';

let fx: Fixture;

before(async () => {
  fx = await startFixture('own-dir');
});
after(async () => fx.dispose());

const owner = (p: string) => `${lstatSync(p).uid}:${lstatSync(p).gid}`;

async function chownBundle(name: string, args: string[]) {
  const b = await fx.bundle(name, args);
  const config = JSON.parse(readFileSync(b.config, 'utf8')) as { annotations?: Record<string, string> };
  config.annotations = { ...config.annotations, 'io.sysrunc.ownership': 'chown' };
  writeFileSync(b.config, JSON.stringify(config));
  return b;
}

test('chown mode shifts a directory rootfs in place while the container exists and restores it at delete', async () => {
  const b = await chownBundle('shifted', ['sleep', '1000']);
  const victim = path.join(fx.work, 'victim');
  writeFileSync(victim, 'host file');
  symlinkSync(victim, path.join(b.rootfs, 'link-to-host'));
  chmodSync(path.join(b.rootfs, 'bin', 'busybox'), 0o4755);
  const created = await fx.sysrunc.cli(['create', '--bundle', b.bundle, 'own-dir-1']);
  assert.equal(created.exitCode, 0, created.stderr);
  try {
    const base = lstatSync(path.join(b.rootfs, 'bin', 'busybox')).uid;
    assert.ok(base >= 65536, `rootfs shifted to the container's range (uid ${base})`);
    assert.equal(lstatSync(path.join(b.rootfs, 'bin', 'busybox')).mode & 0o7777, 0o4755, 'setuid bit re-applied after the chown');
    assert.equal(owner(victim), '0:0', 'a symlink in the rootfs is not followed');
    assert.equal((await fx.sysrunc.cli(['start', 'own-dir-1'])).exitCode, 0);
    const inside = await fx.sysrunc.cli(['exec', 'own-dir-1', 'stat', '-c', '%u:%g', '/bin/busybox', '/etc']);
    assert.equal(inside.stdout.trim(), '0:0\n0:0', inside.stderr);
  } finally {
    const deleted = await fx.sysrunc.cli(['delete', '--force', 'own-dir-1']);
    assert.equal(deleted.exitCode, 0, deleted.stderr);
  }
  assert.equal(owner(path.join(b.rootfs, 'bin', 'busybox')), '0:0');
  assert.equal(lstatSync(path.join(b.rootfs, 'bin', 'busybox')).mode & 0o7777, 0o4755);
  assert.equal(owner(b.rootfs), '0:0');
  assert.deepEqual(await recordsOnceReleased(fx.manager), []);
  assert.deepEqual(mountsUnder(fx.manager.runDir), []);
});

test('foreground run in chown mode restores the rootfs when the container exits', async () => {
  const b = await chownBundle('fg', ['sh', '-c', 'touch /made && stat -c %u:%g /made /bin && cat /proc/self/uid_map']);
  mkdirSync(path.join(b.rootfs, 'data'), { recursive: true });
  const r = await fx.sysrunc.cli(['run', '--bundle', b.bundle, 'own-dir-2']);
  assert.equal(r.exitCode, 0, r.stderr);
  const [made, bin, ...map] = r.stdout.trim().split('\n');
  assert.deepEqual([made, bin], ['0:0', '0:0'], r.stdout);
  const root = map.join(' ').trim().split(/\s+/).map(Number);
  assert.ok(root[0] === 0 && (root[1] ?? 0) > 0, `root inside is not host root (uid_map ${map.join(' ')})`);
  assert.equal(owner(path.join(b.rootfs, 'made')), '0:0');
  assert.equal(owner(path.join(b.rootfs, 'bin')), '0:0');
});

test('clone mode on a directory rootfs is refused naming the setting, the bundle untouched', async () => {
  const b = await fx.bundle('noclone', ['true']);
  const config = JSON.parse(readFileSync(b.config, 'utf8')) as { annotations?: Record<string, string> };
  config.annotations = { 'io.sysrunc.ownership': 'clone' };
  writeFileSync(b.config, JSON.stringify(config));
  const before = readFileSync(b.config, 'utf8');
  const r = await fx.sysrunc.cli(['run', '--bundle', b.bundle, 'own-dir-3']);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /annotation io\.sysrunc\.ownership: ownership mode clone was forced but cannot work here: the rootfs is not an overlay/);
  assert.equal(readFileSync(b.config, 'utf8'), before);
  assert.deepEqual(await recordsOnceReleased(fx.manager), []);
});
