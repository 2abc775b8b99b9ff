// The Debian system-container test images: rootfs caches and their docker import.
// Run as root: node --import tsx --test test/rig/debian-images.test.ts
// A cold first run debootstraps (about a minute here); later runs reuse the cache.
import { execa } from 'execa';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  debianBuildCounters,
  debianCachePaths,
  DEBIAN_IMAGE_TAGS,
  ensureDebianImage,
  ensureDebianRootfs,
  hostDebianMirrors,
  readDebianStamp,
} from './debian-images.ts';
import { startDockerd, type DockerDaemon } from './dockerd.ts';
import { cacheDir } from './paths.ts';
import { mountsUnder } from './proc.ts';

function isStaticElf(file: string): boolean {
  const head = readFileSync(file).subarray(0, 8192);
  return head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) && !head.includes('ld-linux');
}

/** Resolves a path the way the container would see it (absolute symlinks stay inside the rootfs). */
async function realpathIn(root: string, p: string): Promise<string> {
  return (await execa('chroot', [root, 'readlink', '-f', p])).stdout.trim();
}

describe('debian rootfs caches', () => {
  let dind: string;
  let systemd: string;
  before(async () => {
    dind = await ensureDebianRootfs('dind');
    systemd = await ensureDebianRootfs('systemd');
  });

  test('dind rootfs has dockerd, containerd and runc', async () => {
    assert.equal(await realpathIn(dind, '/usr/sbin/dockerd'), '/usr/sbin/dockerd');
    assert.equal(await realpathIn(dind, '/usr/bin/containerd'), '/usr/bin/containerd');
    assert.equal(await realpathIn(dind, '/usr/sbin/runc'), '/usr/sbin/runc');
  });

  test('dind rootfs has a static busybox to build a rootfs inside the container', async () => {
    const busybox = await realpathIn(dind, '/bin/busybox');
    assert.ok(isStaticElf(path.join(dind, busybox)));
  });

  test('dind rootfs configures dockerd for overlay2', () => {
    const config = JSON.parse(readFileSync(path.join(dind, 'etc/docker/daemon.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config['storage-driver'], 'overlay2');
  });

  test('dind rootfs has an executable entrypoint that starts dockerd', () => {
    const file = path.join(dind, 'usr/local/bin/dind-entrypoint');
    assert.equal(statSync(file).mode & 0o111, 0o111);
    assert.match(readFileSync(file, 'utf8'), /^dockerd /m);
  });

  test('dind rootfs has no policy-rc.d left from the build', () => {
    assert.throws(() => lstatSync(path.join(dind, 'usr/sbin/policy-rc.d')), { code: 'ENOENT' });
  });

  test('systemd rootfs has systemd as /sbin/init', async () => {
    assert.equal(await realpathIn(systemd, '/sbin/init'), '/usr/lib/systemd/systemd');
  });

  test('systemd rootfs defaults to multi-user.target', () => {
    assert.match(readlinkSync(path.join(systemd, 'etc/systemd/system/default.target')), /\/multi-user\.target$/);
  });

  test('systemd rootfs masks udev', () => {
    assert.equal(readlinkSync(path.join(systemd, 'etc/systemd/system/systemd-udevd.service')), '/dev/null');
  });

  test('systemd rootfs has an empty machine-id so every container gets its own', () => {
    assert.equal(readFileSync(path.join(systemd, 'etc/machine-id'), 'utf8'), '');
  });

  test('a second ensure call reuses the cache without running debootstrap', async () => {
    const counters = { ...debianBuildCounters };
    const stamp = await readDebianStamp('dind');
    assert.equal(await ensureDebianRootfs('dind'), dind);
    assert.deepEqual(debianBuildCounters, counters);
    assert.equal((await readDebianStamp('dind'))?.builtAt, stamp?.builtAt);
  });

  test('the rootfs lives in a cache dir named after the recipe hash', () => {
    assert.equal(dind, debianCachePaths('dind').rootfs);
    assert.match(path.relative(cacheDir(), dind), /^debian-dind-[0-9a-f]{12}\/rootfs$/);
  });

  test('no mount is left under the cache dir', () => {
    assert.deepEqual(mountsUnder([cacheDir()]), []);
  });
});

describe('hostDebianMirrors', () => {
  let aptDir: string;
  before(async () => {
    aptDir = await mkdtemp(path.join(tmpdir(), 'debimg-apt-'));
  });
  after(async () => {
    await rm(aptDir, { recursive: true, force: true });
  });

  test('reads deb822 sources and ignores other suites', async () => {
    const dir = path.join(aptDir, 'deb822');
    await mkdir(path.join(dir, 'sources.list.d'), { recursive: true });
    await writeFile(
      path.join(dir, 'sources.list.d/debian.sources'),
      [
        'Types: deb',
        'URIs: http://mirror.example/debian/',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        '',
        'Types: deb',
        'URIs: http://mirror.example/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'sources.list.d/other.list'), 'deb https://packages.example/apt cloud-sdk-bookworm main\n');
    assert.deepEqual(hostDebianMirrors(dir), { main: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' });
  });

  test('reads one-line sources.list entries with options', async () => {
    const dir = path.join(aptDir, 'oneline');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'sources.list'), '# comment\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n');
    assert.equal(hostDebianMirrors(dir).main, 'http://ftp.example/debian');
  });

  test('falls back to deb.debian.org', () => {
    assert.deepEqual(hostDebianMirrors(path.join(aptDir, 'missing')), {
      main: 'http://deb.debian.org/debian',
      security: 'http://deb.debian.org/debian-security',
    });
  });
});

describe('debian images under plain runc', () => {
  let daemon: DockerDaemon;
  const ids: Record<string, string> = {};
  before(async () => {
    daemon = await startDockerd({ name: `debimg-${process.pid}`, runtimes: {} });
    ids['dind'] = await ensureDebianImage(daemon, 'dind');
    ids['systemd'] = await ensureDebianImage(daemon, 'systemd');
  });
  after(async () => {
    await daemon?.stop({ purge: true });
  });

  async function run(tag: string, cmd: string[]): Promise<string> {
    return (await daemon.docker(['run', '--rm', tag, ...cmd])).stdout;
  }

  async function config(tag: string): Promise<{ Cmd: string[] | null; Env: string[] | null }> {
    const r = await daemon.docker(['image', 'inspect', '--format', '{{json .Config}}', tag]);
    return JSON.parse(r.stdout) as { Cmd: string[] | null; Env: string[] | null };
  }

  test('dind image runs dockerd', async () => {
    assert.match(await run(DEBIAN_IMAGE_TAGS.dind, ['dockerd', '--version']), /^Docker version 20\.10\./);
  });

  test('dind image runs busybox', async () => {
    assert.equal(await run(DEBIAN_IMAGE_TAGS.dind, ['busybox', 'echo', 'bb']), 'bb');
  });

  test('dind image starts the dind entrypoint by default', async () => {
    assert.deepEqual((await config(DEBIAN_IMAGE_TAGS.dind)).Cmd, ['/usr/local/bin/dind-entrypoint']);
  });

  test('systemd image runs systemctl', async () => {
    assert.match(await run(DEBIAN_IMAGE_TAGS.systemd, ['systemctl', '--version']), /^systemd 252 /);
  });

  test('systemd image starts /sbin/init with container=docker', async () => {
    const c = await config(DEBIAN_IMAGE_TAGS.systemd);
    assert.deepEqual(c.Cmd, ['/sbin/init']);
    assert.ok(c.Env?.includes('container=docker'));
  });

  test('a second ensureDebianImage call reuses the imported image', async () => {
    const imports = debianBuildCounters.imports;
    assert.equal(await ensureDebianImage(daemon, 'dind'), ids['dind']);
    assert.equal(debianBuildCounters.imports, imports);
  });
});
