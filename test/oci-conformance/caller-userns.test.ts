// A config that brings its own user namespace, as containerd 2.x sends for a Kubernetes pod with
// hostUsers: false: when the engine already shifted the rootfs (its top directory belongs to the
// host id the container's root maps to), sysrunc leaves it as it is, and root inside owns its files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { startFixture, type Fixture } from './fixture.ts';

/** Far above sysrunc's pool, as a kubelet's own range is. */
const ENGINE_BASE = 3_000_000_000;
let fx: Fixture;

before(async () => {
  fx = await startFixture('caller-userns');
});
after(async () => fx.dispose());

test('a caller-mapped container whose rootfs the engine already shifted sees it owned by its root, not shifted twice', async () => {
  const { bundle, config, rootfs } = await fx.bundle('shifted', ['stat', '-c', '%u:%g', '/bin/sh', '/']);
  execFileSync('chown', ['-R', '-h', `${ENGINE_BASE}:${ENGINE_BASE}`, rootfs]);
  // The caller's root must reach its rootfs, as it does under an engine's bundle dir.
  chmodSync(fx.work, 0o711);
  const spec = JSON.parse(readFileSync(config, 'utf8')) as { linux: { namespaces: { type: string }[]; uidMappings?: unknown; gidMappings?: unknown } };
  spec.linux.namespaces.push({ type: 'user' });
  spec.linux.uidMappings = [{ containerID: 0, hostID: ENGINE_BASE, size: 65536 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: ENGINE_BASE, size: 65536 }];
  writeFileSync(config, JSON.stringify(spec));
  const out = await fx.sysrunc.cli(['run', '--bundle', bundle, 'shifted']);
  assert.equal(out.exitCode, 0, out.stderr);
  assert.equal(out.stdout, '0:0\n0:0\n');
});
