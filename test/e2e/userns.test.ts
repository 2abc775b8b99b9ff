// Issue 3: every sysrunc container gets its own user namespace (exclusive subid mode): container
// root is an unprivileged host id, image files and Docker's bind mounts still look root-owned inside.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execTool } from '../rig/exec.ts';
import {
  disjoint,
  ensureOwnedImage,
  hostOwner,
  initPid,
  managerList,
  OWNED_FILE,
  OWNED_IMAGE,
  parseIdMap,
  scratchDir,
  startE2ERig,
  type E2ERig,
} from './helpers.ts';

const SIZE = 65536;
let rig: E2ERig;
let work: string;

before(async () => {
  work = scratchDir('userns');
  rig = await startE2ERig('e2e-userns');
  await ensureOwnedImage(rig.d);
});
after(async () => {
  await rig?.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** The single uid mapping row of a container's /proc/self/uid_map. */
async function mappingOf(name: string): Promise<{ containerID: number; hostID: number; size: number }> {
  const rows = parseIdMap((await rig.docker(['exec', name, 'cat', '/proc/self/uid_map'])).stdout);
  assert.equal(rows.length, 1, `expected one uid_map row, got ${JSON.stringify(rows)}`);
  return rows[0] as { containerID: number; hostID: number; size: number };
}

test('uid_map and gid_map inside map 0 to a non-root host base, 65536 ids', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map']);
  const [uid, gid] = r.stdout.split('--').map(parseIdMap);
  assert.equal(uid?.length, 1);
  assert.equal(uid?.[0]?.containerID, 0);
  assert.ok((uid?.[0]?.hostID ?? 0) > 0, `uid base ${uid?.[0]?.hostID} is not above 0`);
  assert.equal(uid?.[0]?.size, SIZE);
  assert.deepEqual(gid, uid);
});

test('image files are owned by 0:0 inside, in a user namespace that does not map host root', async () => {
  const r = await rig.run(['--rm', 'bb:local', 'sh', '-c', 'cat /proc/self/uid_map; ls -ln /']);
  const map = parseIdMap(r.stdout.split('\n').filter((l) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(l)).join('\n'));
  assert.ok(map.length > 0 && map.every((m) => m.hostID !== 0), `uid_map maps host root (or is missing):\n${r.stdout}`);
  const owners = new Map(
    r.stdout
      .split('\n')
      .filter((l) => /^[dl-]/.test(l))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => [f[f.length - 1], `${f[2]}:${f[3]}`] as const),
  );
  for (const dir of ['bin', 'etc', 'home', 'root', 'sbin', 'tmp', 'usr', 'var']) {
    assert.equal(owners.get(dir), '0:0', `/${dir} in:\n${r.stdout}`);
  }
});

test('on the host, the container process runs as the base uid and gid', async () => {
  await rig.run(['-d', '--name', 'ps-uid', 'bb:local', 'sleep', '1000']);
  const uidBase = (await mappingOf('ps-uid')).hostID;
  const pid = await initPid(rig.d, 'ps-uid');
  const gidBase = parseIdMap(readFileSync(`/proc/${pid}/gid_map`, 'utf8'))[0]?.hostID;
  const ps = await execTool('ps', ['-o', 'uid=,gid=', '-p', String(pid)], process.env);
  assert.deepEqual(ps.stdout.trim().split(/\s+/).map(Number), [uidBase, gidBase]);
});

test('two containers running at once get disjoint ranges', async () => {
  await rig.run(['-d', '--name', 'pair-a', 'bb:local', 'sleep', '1000']);
  await rig.run(['-d', '--name', 'pair-b', 'bb:local', 'sleep', '1000']);
  const a = await mappingOf('pair-a');
  const b = await mappingOf('pair-b');
  assert.ok(disjoint([{ start: a.hostID, size: a.size }, { start: b.hostID, size: b.size }]), `overlap: ${JSON.stringify([a, b])}`);
  // The manager's records agree with what the kernel shows.
  const ids = await Promise.all(['pair-a', 'pair-b'].map((n) => rig.docker(['inspect', '--format', '{{.Id}}', n]).then((r) => r.stdout)));
  const listed = await managerList(rig.mgr);
  assert.deepEqual(
    ids.map((id) => listed.find((c) => c.id === id)?.uidMappings[0]?.hostID),
    [a.hostID, b.hostID],
  );
});

// Host binds (-v): by default mounted as they are, in the container's own range (SECURITY.md);
// host-root ownership inside only for a container whose runtime the operator registered with
// --sysrunc-bind-ownership=host-root (helpers.ts SETTING_RUNTIMES).
const HOST_ROOT_BINDS = ['--runtime=sysrunc-host-root-binds'];
const PLAIN_USERNS = ['--runtime=sysrunc-plain-userns'];

test('by default, what container root writes into a -v bind mount is owned by its own range on the host', async () => {
  const vol = path.join(work, 'vol-own-range');
  await execTool('mkdir', ['-m', '0777', vol], process.env);
  const r = await rig.run(['--rm', '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'echo from-container > /data/written && stat -c %u:%g /data/written && cat /proc/self/uid_map']);
  const [inside, map = ''] = r.stdout.trim().split('\n');
  const base = parseIdMap(map)[0]?.hostID ?? 0;
  assert.equal(inside, '0:0');
  assert.ok(base > 0, `root inside is host root: ${map}`);
  assert.deepEqual(hostOwner(path.join(vol, 'written')), { uid: base, gid: base });
});

test('by default, a setuid file container root makes in a -v bind mount is not host root\'s on the host', async () => {
  const vol = path.join(work, 'vol-setuid');
  await execTool('mkdir', ['-m', '0777', vol], process.env);
  await rig.run(['--rm', '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'cp /bin/busybox /data/x && chmod 4755 /data/x']);
  const st = statSync(path.join(vol, 'x'));
  assert.notEqual(st.uid, 0, 'a setuid file owned by host root');
  assert.equal(st.mode & 0o4000, 0o4000);
});

test('by default, host root\'s files in a -v bind mount are nobody\'s inside, and container root cannot write them', async () => {
  const vol = path.join(work, 'vol-nobody');
  await execTool('mkdir', ['-m', '0755', vol], process.env);
  writeFileSync(path.join(vol, 'from-host'), 'host data\n');
  const r = await rig.run(['--rm', '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'stat -c %u:%g /data/from-host; echo x >> /data/from-host && echo WROTE; touch /data/new && echo CREATED; true']);
  assert.equal(r.stdout.trim(), '65534:65534');
  assert.equal(readFileSync(path.join(vol, 'from-host'), 'utf8'), 'host data\n');
});

test('a :ro bind mount cannot be remounted read-write by container root', async () => {
  const vol = path.join(work, 'vol-ro');
  await execTool('mkdir', ['-m', '0777', vol], process.env);
  for (const extra of [[], HOST_ROOT_BINDS]) {
    const r = await rig.run(['--rm', ...extra, '-v', `${vol}:/ro:ro`, 'bb:local', 'sh', '-c', 'mount -o remount,rw,bind /ro && echo REMOUNTED; touch /ro/x && echo WROTE; true']);
    assert.equal(r.stdout.trim(), '', `${extra.join(' ')}: ${r.stdout}`);
  }
  assert.deepEqual(readdirSync(vol), []);
});

test('with bind-ownership host-root, what container root writes into a -v bind mount is owned by host root', async () => {
  const vol = path.join(work, 'vol-write');
  await execTool('mkdir', ['-m', '0755', vol], process.env);
  const r = await rig.run(['--rm', ...HOST_ROOT_BINDS, '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'echo from-container > /data/written; mkdir /data/subdir; cat /proc/self/uid_map']);
  assert.ok((parseIdMap(r.stdout)[0]?.hostID ?? 0) > 0, `root inside is host root: ${r.stdout}`);
  assert.deepEqual(hostOwner(path.join(vol, 'written')), { uid: 0, gid: 0 });
  assert.deepEqual(hostOwner(path.join(vol, 'subdir')), { uid: 0, gid: 0 });
  assert.equal(readFileSync(path.join(vol, 'written'), 'utf8'), 'from-container\n');
});

test('with bind-ownership host-root, a host-root-owned file in a -v bind mount is root-owned inside', async () => {
  const vol = path.join(work, 'vol-read');
  await execTool('mkdir', ['-m', '0755', vol], process.env);
  writeFileSync(path.join(vol, 'from-host'), 'host data\n');
  chmodSync(path.join(vol, 'from-host'), 0o600);
  const r = await rig.run(['--rm', ...HOST_ROOT_BINDS, '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'stat -c %u:%g /data /data/from-host; cat /data/from-host']);
  assert.equal(r.stdout, '0:0\n0:0\nhost data');
});

test("Docker's /etc/hosts, /etc/resolv.conf and /etc/hostname are root-owned inside", async () => {
  const r = await rig.run(['--rm', 'bb:local', 'stat', '-c', '%n %u:%g', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname']);
  assert.equal(r.stdout, '/etc/hosts 0:0\n/etc/resolv.conf 0:0\n/etc/hostname 0:0');
});

test('/etc/hostname and the UTS hostname are the container hostname', async () => {
  const r = await rig.run(['--rm', '--hostname', 'sysrunc-box', 'bb:local', 'sh', '-c', 'cat /etc/hostname; hostname']);
  assert.equal(r.stdout, 'sysrunc-box\nsysrunc-box');
});

test('--network host: a system container (the default) is refused with an error naming the host network namespace', async () => {
  const r = await rig.run(['--rm', '--network', 'host', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /network namespace is the host's \(--network host\)/);
  assert.match(r.stderr, /io\.sysrunc\.syscont=false or the runtime flag --sysrunc-syscont=false/);
});

test('--network host with syscont=false (a runtime flag): the container runs in its own user namespace', async () => {
  const r = await rig.run(['--rm', '--network', 'host', ...PLAIN_USERNS, 'bb:local', 'cat', '/proc/self/uid_map'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  const [row] = parseIdMap(r.stdout);
  assert.ok(row !== undefined && row.containerID === 0 && row.hostID > 0 && row.size === SIZE, r.stdout);
});

test('--read-only: the container runs with its root filesystem read-only', async () => {
  const r = await rig.run(['--rm', '--read-only', 'bb:local', 'sh', '-c', 'touch /new-file 2>&1; echo "touch=$?"; cat /proc/self/uid_map'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  const [touch, status, ...map] = r.stdout.split('\n');
  assert.match(touch ?? '', /Read-only file system/);
  assert.equal(status, 'touch=1');
  assert.ok((parseIdMap(map.join('\n'))[0]?.hostID ?? 0) > 0);
});

test('an image file owned by uid 1000 is owned by 1000 inside', async () => {
  const r = await rig.run(['--rm', OWNED_IMAGE, 'stat', '-c', '%u:%g', OWNED_FILE]);
  assert.equal(r.stdout, '1000:1000');
});

test('an image file owned by uid 1000 is owned by base+1000 on the host', async () => {
  await rig.run(['-d', '--name', 'owned', OWNED_IMAGE, 'sleep', '1000']);
  const base = (await mappingOf('owned')).hostID;
  const pid = await initPid(rig.d, 'owned');
  assert.deepEqual(hostOwner(`/proc/${pid}/root${OWNED_FILE}`), { uid: base + 1000, gid: base + 1000 });
});
