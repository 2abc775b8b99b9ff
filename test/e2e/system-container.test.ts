// Issue 4: `docker run --runtime=sysrunc` gives a system container: systemd boots and Docker runs
// inside, without --privileged, confined by the container's own user namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS, SYSTEMD_STOP_SIGNAL } from '../rig/debian-images.ts';
import { leftovers, NOTHING_LEFT, parseIdMap, startE2ERig, type E2ERig } from './helpers.ts';
import { STORE_PATHS } from '../../src/common/store-paths.ts';

let rig: E2ERig;
let systemd: string;

before(async () => {
  // The kernel-log check covers the inner dockerd's overlays too: its store lives beside the
  // container's layer while it runs, below no live overlay's upper dir (issue 25).
  rig = await startE2ERig('e2e-syscont');
  await ensureDebianImage(rig.d, 'systemd');
  await ensureDebianImage(rig.d, 'dind');
  systemd = (await rig.run(['-d', `--stop-signal=${SYSTEMD_STOP_SIGNAL}`, DEBIAN_IMAGE_TAGS.systemd])).stdout.trim();
});

after(async () => {
  await rig.dispose();
});

async function exec(id: string, args: string[]) {
  return rig.docker(['exec', id, ...args], { reject: false });
}

test('systemd reaches running (or degraded, with each failed unit listed) within 60 s', async () => {
  // Until systemd has its bus up, systemctl cannot even ask; poll, bounded.
  let state = '';
  let stderr = '';
  for (let i = 0; i < 60 && !['running', 'degraded'].includes(state); i++) {
    const r = await exec(systemd, ['systemctl', 'is-system-running']);
    state = r.stdout.trim();
    stderr = r.stderr;
    if (!['running', 'degraded'].includes(state)) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  if (state === 'degraded') {
    const failed = await exec(systemd, ['systemctl', '--failed', '--no-legend', '--plain']);
    assert.fail(`systemd is degraded; failed units:\n${failed.stdout}`);
  }
  assert.equal(state, 'running', stderr);
});

test('systemd runs as pid 1 inside the container\'s own user namespace', async () => {
  assert.equal((await exec(systemd, ['cat', '/proc/1/comm'])).stdout.trim(), 'systemd');
  const map = parseIdMap((await exec(systemd, ['cat', '/proc/self/uid_map'])).stdout);
  assert.equal(map[0]?.containerID, 0);
  assert.ok((map[0]?.hostID ?? 0) > 0);
});

// `>>` opens without O_TRUNC, so the permission check comes before the read-only mount's: under
// plain runc root passes it and hits the read-only /proc/sys; sysrunc's root is not host root.
// It writes back the value it read, so a write that wrongly succeeds changes nothing on the host.
const APPEND_SYSCTL = 'v=$(cat /proc/sys/kernel/panic) && echo "$v" >> /proc/sys/kernel/panic';

test('writing a host-global sysctl under /proc/sys/kernel is denied inside: container root is not host root', async () => {
  const r = await exec(systemd, ['sh', '-c', APPEND_SYSCTL]);
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /Permission denied/);
});

test('under plain runc the same sysctl write fails differently, on the read-only mount (the control for the test above)', async () => {
  const r = await rig.docker(['run', '--runtime=runc', '--rm', 'bb:local', 'sh', '-c', APPEND_SYSCTL], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /Read-only file system/);
});

test('container root can write its own network namespace\'s sysctls', async () => {
  // As the container's init (docker exec processes keep Docker's default capabilities).
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward']);
  assert.equal(r.stdout.trim(), '1', r.stderr);
});

test('docker exec as root gets the system container\'s capabilities, not Docker\'s defaults', async () => {
  const init = await exec(systemd, ['grep', 'CapEff', '/proc/1/status']);
  const self = await exec(systemd, ['grep', 'CapEff', '/proc/self/status']);
  assert.equal(self.stdout.trim(), init.stdout.trim());
  const sysctl = await exec(systemd, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward']);
  assert.equal(sysctl.stdout.trim(), '1', sysctl.stderr);
});

test('host block devices are absent inside', async () => {
  const r = await exec(systemd, ['ls', '/dev']);
  assert.equal(r.exitCode, 0, r.stderr);
  const names = r.stdout.split('\n').filter((n) => n !== '');
  assert.ok(names.includes('null'), `the listing is of the container's /dev: ${r.stdout}`);
  assert.deepEqual(names.filter((n) => /^(sd|vd|hd|nvme|xvd|loop|dm-|mmcblk)/.test(n)), []);
});

test('/dev/kmsg is /dev/null', async () => {
  const r = await exec(systemd, ['stat', '-c', '%t:%T', '/dev/kmsg']);
  assert.equal(r.stdout.trim(), '1:3');
});

test('journald runs with ReadKMsg=no from sysrunc\'s drop-in, since /dev/kmsg (/dev/null) cannot be polled', async () => {
  const config = await exec(systemd, ['systemd-analyze', 'cat-config', 'systemd/journald.conf']);
  assert.match(config.stdout, /# \/run\/systemd\/journald\.conf\.d\/50-sysrunc-kmsg\.conf\n(#.*\n)*\[Journal\]\nReadKMsg=no/, config.stdout + config.stderr);
  const journald = await exec(systemd, ['systemctl', 'is-active', 'systemd-journald']);
  assert.equal(journald.stdout.trim(), 'active');
});

test('docker stop shuts systemd down cleanly (exit code 0 from SIGRTMIN+3)', async () => {
  const r = await rig.docker(['stop', '-t', '30', systemd]);
  assert.equal(r.exitCode, 0);
  assert.equal((await rig.docker(['inspect', '-f', '{{.State.ExitCode}}', systemd])).stdout.trim(), '0');
});

test('Docker in Docker: the inner dockerd runs overlay2, imports a busybox rootfs and runs it', async () => {
  const id = (await rig.run(['-d', DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  try {
    let driver = '';
    for (let i = 0; i < 60 && driver === ''; i++) {
      const info = await exec(id, ['docker', 'info', '--format', '{{.Driver}}']);
      if (info.exitCode === 0) driver = info.stdout.trim();
      else await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(driver, 'overlay2');
    const build = await exec(id, ['sh', '-c', 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/sh && ln -s busybox /tmp/bb/bin/echo && tar -C /tmp/bb -c . | docker import - inner:bb']);
    assert.equal(build.exitCode, 0, build.stderr);
    const inner = await exec(id, ['docker', 'run', '--rm', 'inner:bb', 'echo', 'hello from the inner container']);
    assert.equal(inner.stdout.trim(), 'hello from the inner container', inner.stderr);
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
});

async function waitForInnerDocker(id: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if ((await exec(id, ['docker', 'info'])).exitCode === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.fail(`inner dockerd of ${id} did not answer within 60 s`);
}

const volumesDir = () => path.join(rig.mgr.stateDir, 'volumes');

test('store volume: /var/lib/docker is a host directory, not on overlayfs, kept across stop/start, synced out, removed with the container', async () => {
  const name = 'dind-volume';
  const id = (await rig.run(['-d', '--name', name, DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  try {
    await waitForInnerDocker(id);
    const fsType = await exec(id, ['stat', '-f', '-c', '%T', '/var/lib/docker']);
    assert.equal(fsType.stdout.trim(), 'ext2/ext3');
    assert.deepEqual(readdirSync(volumesDir()), [id]);
    const imported = await exec(id, ['sh', '-c', 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/echo && tar -C /tmp/bb -c . | docker import - inner:kept']);
    assert.equal(imported.exitCode, 0, imported.stderr);

    await rig.docker(['stop', name]);
    // Synced out into the container's own layer, where docker commit and docker cp look.
    const upper = (await rig.docker(['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name])).stdout.trim();
    for (let i = 0; i < 50 && !existsSync(path.join(upper, 'var/lib/docker/image')); i++) await new Promise((r) => setTimeout(r, 200));
    assert.ok(existsSync(path.join(upper, 'var/lib/docker/image')), 'inner images synced out into the upper layer');
    // docker stop's SIGTERM reached the inner dockerd, which shut down cleanly rather than being killed.
    assert.match(readFileSync(path.join(upper, 'var/log/dockerd.log'), 'utf8'), /Daemon shutdown complete/);

    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    const inner = await exec(id, ['docker', 'run', '--rm', 'inner:kept', 'echo', 'kept across stop and start']);
    assert.equal(inner.stdout.trim(), 'kept across stop and start', inner.stderr);
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  for (let i = 0; i < 100 && readdirSync(volumesDir()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(readdirSync(volumesDir()), []);
});

test('docker rm -f of a running container with inner images succeeds and removes its store volume', async () => {
  const id = (await rig.run(['-d', DEBIAN_IMAGE_TAGS.dind])).stdout.trim();
  await waitForInnerDocker(id);
  const imported = await exec(id, ['sh', '-c', 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && tar -C /tmp/bb -c . | docker import - inner:gone']);
  assert.equal(imported.exitCode, 0, imported.stderr);
  // Docker deletes the container's layer right after the runtime's delete: a sync-out still
  // writing into it then would make that removal fail with "directory not empty".
  await rig.docker(['rm', '-f', id]);
  assert.equal((await rig.docker(['ps', '-aq', '--no-trunc'])).stdout.split('\n').includes(id), false);
  for (let i = 0; i < 100 && readdirSync(volumesDir()).includes(id); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(readdirSync(volumesDir()).includes(id), false);
});

test('a -v mount over /var/lib/docker is respected and gets no store volume', async () => {
  const hostDir = mkdtempSync('/var/tmp/sysrunc-e2e-userdocker-');
  try {
    // The user's own dir, given to the container's root the way SECURITY.md says: host-root binds.
    const r = await rig.run(['--rm', '--runtime=sysrunc-host-root-binds', '-v', `${hostDir}:/var/lib/docker`, '--entrypoint', 'sh', DEBIAN_IMAGE_TAGS.dind, '-c', 'touch /var/lib/docker/mine && stat -c %u /var/lib/docker/mine && cat /proc/self/uid_map']);
    const [owner, ...map] = r.stdout.trim().split('\n');
    assert.equal(owner, '0', r.stderr);
    assert.ok((parseIdMap(map.join('\n'))[0]?.hostID ?? 0) > 0, `root inside is not host root: ${r.stdout}`);
    assert.ok(existsSync(path.join(hostDir, 'mine')));
    assert.equal(statSync(path.join(hostDir, 'mine')).uid, 0);
    // and no store volume: the file is in the user's dir, not in a volume of sysrunc's.
  } finally {
    rmSync(hostDir, { recursive: true, force: true });
  }
});

/** Mount points inside (mountinfo field 5, octal escapes left as they are). */
function mountPoints(mountinfo: string): string[] {
  return mountinfo.split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => m !== undefined);
}

test('an image without any store path gets no store volume', async () => {
  const id = (await rig.run(['-d', 'bb:local', 'sleep', '1000'])).stdout.trim();
  try {
    const r = await exec(id, ['cat', '/proc/self/mountinfo']);
    assert.equal(r.exitCode, 0, r.stderr);
    const mounted = mountPoints(r.stdout);
    assert.ok(mounted.includes('/'), r.stdout);
    assert.deepEqual(mounted.filter((m) => STORE_PATHS.some((p) => m === p || m.startsWith(`${p}/`))), []);
    assert.equal(readdirSync(volumesDir()).includes(id), false, 'no host volume dir for it');
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
});

test('the container\'s cgroups are delegated to its root: directory and delegation files, never the limit files', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', [
    'cd /sys/fs/cgroup/memory',
    'stat -c %u . cgroup.procs tasks memory.limit_in_bytes',
    'mkdir inner && echo made && rmdir inner',
  ].join(' && ')]);
  assert.equal(r.stdout.trim(), '0\n0\n0\n65534\nmade', r.stderr);
});

test('a shared host pid namespace is refused with a clear error', async () => {
  const r = await rig.run(['--rm', '--pid', 'host', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /the pid namespace is the host's \(--pid host\)/);
});

test('a --read-only system container still gets writable /run and /tmp', async () => {
  const r = await rig.run(['--rm', '--read-only', 'bb:local', 'sh', '-c', 'touch /run/x /tmp/y && echo ok; touch /etc/z 2>/dev/null || echo ro']);
  assert.equal(r.stdout.trim(), 'ok\nro');
});

test('nothing is left behind once the system containers are removed', async () => {
  await rig.docker(['rm', '-f', systemd], { reject: false });
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
});
