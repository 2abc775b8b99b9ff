import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { STORE_PATHS, storePathsFor as storePathsOfOpenRootfs, type StorePaths } from '../../src/common/store-paths.ts';
import { withRootfsSync } from '../../src/host/in-root.ts';
import { usedStorePaths } from '../../src/spec-transform/gather-facts.ts';
import { scratch } from '../fixtures/volumes/env.ts';

const s = scratch('volumes-store-paths');
after(() => s.cleanup());

/** The store paths for the rootfs at this host path (open for the call, as gather-facts does). */
function storePathsFor(info: { rootfs: string; mountDestinations: readonly string[] }): StorePaths {
  return withRootfsSync(info.rootfs, (r) => storePathsOfOpenRootfs({ rootfs: r, mountDestinations: info.mountDestinations }));
}

function rootfsWithDaemonJson(content: string): string {
  const rootfs = s.sub('rootfs');
  mkdirSync(path.join(rootfs, 'etc/docker'), { recursive: true });
  writeFileSync(path.join(rootfs, 'etc/docker/daemon.json'), content);
  return rootfs;
}

test('storePathsFor lists the default store paths for an image without daemon.json', () => {
  const r = storePathsFor({ rootfs: s.sub('rootfs'), mountDestinations: ['/proc', '/dev', '/etc/hosts'] });
  assert.deepEqual(r.paths, [...STORE_PATHS].sort());
  assert.deepEqual([r.skipped, r.warnings, r.dockerDataRoot], [[], [], '/var/lib/docker']);
});

test("storePathsFor uses the data-root of the image's /etc/docker/daemon.json instead of /var/lib/docker", () => {
  const r = storePathsFor({ rootfs: rootfsWithDaemonJson('{"data-root": "/srv/docker/"}'), mountDestinations: [] });
  assert.equal(r.dockerDataRoot, '/srv/docker');
  assert.ok(r.paths.includes('/srv/docker'));
  assert.ok(!r.paths.includes('/var/lib/docker'));
});

test('storePathsFor reads daemon.json inside the rootfs even through an absolute symlink', () => {
  const rootfs = s.sub('rootfs');
  mkdirSync(path.join(rootfs, 'etc'));
  mkdirSync(path.join(rootfs, 'cfg-in-image'));
  writeFileSync(path.join(rootfs, 'cfg-in-image/daemon.json'), '{"data-root": "/data/docker"}');
  symlinkSync('/cfg-in-image', path.join(rootfs, 'etc/docker'));
  const r = storePathsFor({ rootfs, mountDestinations: [] });
  assert.equal(r.dockerDataRoot, '/data/docker');
});

test('a mount at a store path or at a parent of it wins over the store volume', () => {
  const r = storePathsFor({ rootfs: s.sub('rootfs'), mountDestinations: ['/var/lib/docker/', '/var/lib/rancher'] });
  assert.deepEqual(r.skipped, [
    { path: '/var/lib/docker', coveredBy: '/var/lib/docker' },
    { path: '/var/lib/rancher/k3s', coveredBy: '/var/lib/rancher' },
  ]);
  assert.ok(!r.paths.includes('/var/lib/docker') && !r.paths.includes('/var/lib/rancher/k3s'));
});

test('a mount below a store path does not take the store volume away', () => {
  const r = storePathsFor({ rootfs: s.sub('rootfs'), mountDestinations: ['/var/lib/docker/volumes/data'] });
  assert.ok(r.paths.includes('/var/lib/docker'));
});

test('an unusable data-root falls back to /var/lib/docker with a warning', () => {
  for (const content of ['{"data-root": "relative/dir"}', '{"data-root": "/"}', '{not json']) {
    const r = storePathsFor({ rootfs: rootfsWithDaemonJson(content), mountDestinations: [] });
    assert.equal(r.dockerDataRoot, '/var/lib/docker', content);
    assert.equal(r.warnings.length, 1, content);
  }
});

test("podman's storage (containers/storage's root graphroot) gets a store volume, so an inner podman is not overlayfs on overlayfs", () => {
  const r = storePathsFor({ rootfs: s.sub('rootfs'), mountDestinations: [] });
  assert.ok(r.paths.includes('/var/lib/containers/storage'), r.paths.join(' '));
});

test('an image that ships podman gets the containers/storage volume before podman has made the directory', () => {
  const rootfs = s.sub('rootfs');
  mkdirSync(path.join(rootfs, 'usr/bin'), { recursive: true });
  assert.ok(!usedStorePaths({ ociVersion: '1.0.2' }, rootfs).includes('/var/lib/containers/storage'));
  writeFileSync(path.join(rootfs, 'usr/bin/podman'), '');
  assert.deepEqual(usedStorePaths({ ociVersion: '1.0.2' }, rootfs), ['/var/lib/containers/storage']);
});

test('an image whose dockerd and podman are both reached through one /usr/sbin symlink gets both store volumes', () => {
  const rootfs = s.sub('rootfs-linked-sbin');
  mkdirSync(path.join(rootfs, 'opt/engines'), { recursive: true });
  mkdirSync(path.join(rootfs, 'usr'), { recursive: true });
  symlinkSync('/opt/engines', path.join(rootfs, 'usr/sbin'));
  writeFileSync(path.join(rootfs, 'opt/engines/podman'), '');
  writeFileSync(path.join(rootfs, 'opt/engines/dockerd'), '');
  assert.deepEqual(usedStorePaths({ ociVersion: '1.0.2' }, rootfs), ['/var/lib/containers/storage', '/var/lib/docker']);
});
