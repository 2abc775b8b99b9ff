// Issue 21: a system container's own /proc figures through sysrunc's lxcfs (real lxcfs, dockerd,
// runc): free, nproc, cpuinfo and uptime follow its limits; lxcfs killed -9 heals in place; no
// lxcfs installed means host figures, one warning and a status line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS, SYSTEMD_STOP_SIGNAL } from '../rig/debian-images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { waitUntil } from '../rig/proc.ts';
import { startE2ERig, type E2ERig } from './helpers.ts';
import type { Result } from '../../src/manager-api/v1.ts';

const DEBIAN = DEBIAN_IMAGE_TAGS.systemd; // has procps (free, uptime, top) and coreutils (nproc)
let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-lxcfs', { lxcfs: true });
  await ensureDebianImage(rig.d, 'systemd');
});

after(async () => {
  await rig?.dispose();
});

async function sh(id: string, script: string): Promise<string> {
  const r = await rig.docker(['exec', id, 'sh', '-c', script], { reject: false });
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `free -m`'s total memory (procps reads /proc/meminfo). */
async function freeTotalMiB(id: string): Promise<number> {
  return Number(await sh(id, "free -m | awk '/^Mem:/ {print $2}'"));
}

async function memTotalKiB(id: string): Promise<number> {
  return Number(await sh(id, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"));
}

function status(socket: string): NonNullable<Result<'status'>['lxcfs']> {
  const r = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['status', '--json', '--manager-socket', socket], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lxcfs = (JSON.parse(r.stdout) as Result<'status'>).lxcfs;
  assert.ok(lxcfs !== undefined, r.stdout);
  return lxcfs;
}

async function runDetached(args: readonly string[]): Promise<string> {
  return (await rig.run(['-d', ...args, DEBIAN, 'sleep', 'infinity'])).stdout.trim();
}

test('docker run -m 256m --cpus 1: free -m shows 256 MB total, nproc 1, one processor in /proc/cpuinfo and cpu/online', async () => {
  const id = await runDetached(['-m', '256m', '--cpus', '1']);
  try {
    const total = await freeTotalMiB(id);
    assert.ok(Math.abs(total - 256) <= 1, `free -m total ${total}`);
    assert.equal(await sh(id, 'nproc'), '1');
    assert.equal(await sh(id, 'grep -c ^processor /proc/cpuinfo'), '1');
    assert.match(await sh(id, 'cat /sys/devices/system/cpu/online'), /^\d+$/);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test("uptime counts from the container's start, and grows", async () => {
  const before = Date.now();
  const id = await runDetached([]);
  try {
    const first = Number((await sh(id, 'cat /proc/uptime')).split(' ')[0]);
    const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    // At most the time since just before `docker run` (the host's is far larger).
    assert.ok(first <= (Date.now() - before) / 1000 + 1, `container uptime ${first}`);
    assert.ok(first < hostUptime, `container ${first} vs host ${hostUptime}`);
    await new Promise((r) => setTimeout(r, 1100));
    const second = Number((await sh(id, 'cat /proc/uptime')).split(' ')[0]);
    assert.ok(second > first, `${first} then ${second}`);
    assert.match(await sh(id, 'uptime'), /up\s+0 min|up\s+\d+ sec|up\s+0:0\d/);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('without limits the container sees the host figures, as without lxcfs', async () => {
  const id = await runDetached([]);
  try {
    const hostKiB = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
    assert.equal(await memTotalKiB(id), hostKiB);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('io.sysrunc.lxcfs=false (here SYSRUNC_LXCFS=false) keeps the kernel /proc files', async () => {
  const id = await runDetached(['-m', '256m', '-e', 'SYSRUNC_LXCFS=false']);
  try {
    assert.ok((await memTotalKiB(id)) > 300 * 1024);
    assert.equal(await sh(id, 'grep -c fuse.lxcfs /proc/self/mountinfo || true'), '0');
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('container root cannot write the lxcfs files, nor remount them read-write; its umount and mount change nothing outside', async () => {
  const [a, b] = [await runDetached(['-m', '192m']), await runDetached(['-m', '192m'])];
  const viewMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${rig.mgr.runDir}/lxcfs/`)).length;
  const before = viewMounts();
  try {
    const write = await rig.docker(['exec', a, 'sh', '-c', 'echo 1 > /proc/meminfo'], { reject: false });
    assert.notEqual(write.exitCode, 0);
    const remount = await rig.docker(['exec', a, 'mount', '-o', 'remount,bind,rw', '/proc/meminfo'], { reject: false });
    assert.notEqual(remount.exitCode, 0, 'remount rw succeeded');
    assert.notEqual(await sh(a, 'touch /proc/uptime 2>&1; echo $?'), '0');
    // Root may take its own copies down (they are its mount namespace's): the real file shows the
    // host's figures then (SECURITY.md), and nothing outside the container changes.
    await sh(a, 'until ! grep -q " /proc/meminfo " /proc/self/mountinfo; do umount /proc/meminfo || exit 1; done');
    await sh(a, 'mount --bind /etc/hostname /proc/uptime');
    assert.equal(viewMounts(), before);
    assert.equal(await freeTotalMiB(b), 192);
    assert.ok(/^\d+\.\d+ \d+\.\d+$/.test(await sh(b, 'cat /proc/uptime')));
  } finally {
    await rig.docker(['rm', '-f', a, b]);
  }
});

test('lxcfs killed -9 while 3 containers run: it is restarted and each container shows its own figures again, without a restart', async () => {
  const limits = [128, 192, 256];
  const ids = await Promise.all(limits.map((m) => runDetached(['-m', `${m}m`])));
  try {
    for (const [i, id] of ids.entries()) assert.equal(await freeTotalMiB(id), limits[i]);
    const before = status(rig.mgr.socket);
    assert.equal(before.state, 'up');
    process.kill(before.pid as number, 'SIGKILL');
    await waitUntil('lxcfs to be restarted', () => {
      const s = status(rig.mgr.socket);
      return s.state === 'up' && s.pid !== before.pid;
    }, 30_000);
    for (const [i, id] of ids.entries()) {
      assert.equal(await freeTotalMiB(id), limits[i], `container ${i}`);
      assert.equal((await rig.docker(['inspect', '-f', '{{.State.Running}} {{.RestartCount}}', id])).stdout.trim(), 'true 0');
    }
    assert.match(rig.mgr.log(), /lxcfs: died; restarting it/);
    // A container started after the restart gets the healed view too.
    const late = await runDetached(['-m', '160m']);
    ids.push(late);
    assert.equal(await freeTotalMiB(late), 160);
  } finally {
    await rig.docker(['rm', '-f', ...ids]);
  }
});

test('a manager restart keeps lxcfs: the new manager adopts it and containers keep their figures', async () => {
  const id = await runDetached(['-m', '224m']);
  try {
    const before = status(rig.mgr.socket);
    await rig.mgr.restart();
    const after = status(rig.mgr.socket);
    assert.equal(after.state, 'up');
    assert.equal(after.pid, before.pid);
    assert.equal(await freeTotalMiB(id), 224);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('a systemd system container still boots to running, systemd-detect-virt still says container, and free shows its limit', async () => {
  const id = (await rig.run(['-d', '-m', '512m', `--stop-signal=${SYSTEMD_STOP_SIGNAL}`, DEBIAN])).stdout.trim();
  try {
    let state = '';
    for (let i = 0; i < 60 && state !== 'running'; i++) {
      state = (await rig.docker(['exec', id, 'systemctl', 'is-system-running'], { reject: false })).stdout.trim();
      if (state !== 'running') await new Promise((r) => setTimeout(r, 1000));
    }
    const failed = state === 'running' ? '' : (await rig.docker(['exec', id, 'systemctl', '--failed', '--no-legend', '--plain'], { reject: false })).stdout;
    assert.equal(state, 'running', failed);
    const virt = await rig.docker(['exec', id, 'systemd-detect-virt', '--container'], { reject: false });
    assert.equal(virt.exitCode, 0, virt.stdout);
    assert.notEqual(virt.stdout.trim(), 'none');
    assert.equal(await freeTotalMiB(id), 512);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('no lxcfs installed: containers run with the host figures, the manager logs one warning, and status says missing', async () => {
  const bare = await startE2ERig('e2e-lxcfs-none', { lxcfs: true, managerArgs: ['--lxcfs-binary', '/nonexistent/lxcfs'] });
  try {
    const r = await bare.run(['--rm', '-m', '256m', 'bb:local', 'awk', '/^MemTotal:/ {print $2}', '/proc/meminfo']);
    assert.ok(Number(r.stdout.trim()) > 300 * 1024, r.stdout);
    const warnings = bare.mgr.log().split('\n').filter((l) => l.includes('lxcfs') && l.includes('"level":40'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    const s = status(bare.mgr.socket);
    assert.equal(s.state, 'missing');
    const text = spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc-ctl'), ['status', '--manager-socket', bare.mgr.socket], { encoding: 'utf8' });
    assert.match(text.stdout, /^lxcfs: missing, \/nonexistent\/lxcfs .*not found/m);
  } finally {
    await bare.dispose();
  }
});
