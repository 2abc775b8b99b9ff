// Issue 5: ownership without idmapped mounts. This machine has idmapped mounts, so the clone and
// chown paths are forced (a runtime registered with --sysrunc-ownership, or io.sysrunc.ownership); each runs under a real dockerd.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inspect, leftovers, NOTHING_LEFT, parseIdMap, startE2ERig, type E2ERig } from './helpers.ts';

let rig: E2ERig;
let scratch: string;
const CLONE = ['--runtime=sysrunc-clone'];
// Bind sources are re-owned only for containers that ask for host-root binds.
const CLONE_HOST_ROOT_BINDS = ['--runtime=sysrunc-clone-host-root-binds'];

before(async () => {
  rig = await startE2ERig('e2e-ownership');
  scratch = mkdtempSync('/var/tmp/sysrunc-e2e-ownership-');
});

after(async () => {
  await rig.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

const clonesDir = () => path.join(rig.mgr.stateDir, 'clones');
const owner = (p: string) => `${lstatSync(p).uid}:${lstatSync(p).gid}`;

async function hostRoot(id: string): Promise<number> {
  const pid = await inspect(rig.d, id, '{{.State.Pid}}');
  const map = parseIdMap((await rig.docker(['exec', id, 'cat', '/proc/self/uid_map'])).stdout);
  assert.ok(Number(pid) > 0);
  const root = map.find((m) => m.containerID === 0)?.hostID;
  assert.ok(root !== undefined && root > 0, JSON.stringify(map));
  return root;
}

/** The ownership mode the manager recorded (and logged) when it registered the container. */
function registeredMode(id: string): string | undefined {
  let mode: string | undefined;
  for (const line of rig.mgr.log().split('\n')) {
    if (!line.includes(id) || !line.includes('registered container')) continue;
    let entry: { id?: string; msg?: string; ownership?: { mode?: string } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue; // a line still being written
    }
    if (entry.id === id && entry.msg === 'registered container') mode = entry.ownership?.mode;
  }
  return mode;
}

let cids = 0;
/** `docker run --cidfile`: the container id, also for --rm containers that are gone afterwards. */
async function runWithId(args: readonly string[]): Promise<{ id: string; stdout: string; stderr: string; exitCode: number }> {
  const cidfile = path.join(scratch, `cid-${++cids}`);
  const r = await rig.run(['--cidfile', cidfile, ...args], { reject: false });
  return { id: readFileSync(cidfile, 'utf8').trim(), stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(check(), what);
}

test('clone mode: image files are root-owned inside, in the container\'s own id range', async () => {
  const r = await runWithId(['--rm', ...CLONE, 'bb:local', 'sh', '-c', 'stat -c %u:%g /bin/busybox /etc; cat /proc/self/uid_map; touch /new && stat -c %u:%g /new']);
  assert.equal(registeredMode(r.id), 'clone');
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual([lines[0], lines[1], lines.at(-1)], ['0:0', '0:0', '0:0'], r.stdout);
  const map = parseIdMap(lines.slice(2, -1).join('\n'));
  assert.ok((map[0]?.hostID ?? 0) > 0, r.stdout);
});

test('clone mode: the container layer is host-root-owned again after stop, the clone is kept until docker rm', async () => {
  const id = (await rig.run(['-d', ...CLONE, 'bb:local', 'sh', '-c', 'echo made > /made-inside; exec sleep 1000'])).stdout.trim();
  const upper = await inspect(rig.d, id, '{{.GraphDriver.Data.UpperDir}}');
  const lower = (await inspect(rig.d, id, '{{.GraphDriver.Data.LowerDir}}')).split(':').at(-1) ?? '';
  try {
    await waitFor('the container wrote its file', () => existsSync(path.join(upper, 'made-inside')));
    assert.equal(registeredMode(id), 'clone');
    const root = await hostRoot(id);
    assert.equal(owner(path.join(upper, 'made-inside')), `${root}:${root}`, 'shifted while it runs');
    assert.equal(owner(path.join(lower, 'bin/busybox')), '0:0', 'image layers are never chowned');
    assert.ok(existsSync(path.join(clonesDir(), id, 'upper')), 'the clone lives under the manager');

    await rig.docker(['stop', '-t', '1', id]);
    assert.equal(owner(path.join(upper, 'made-inside')), '0:0', 'reverted at stop');
    const copied = await rig.docker(['cp', `${id}:/made-inside`, '-']);
    assert.match(copied.stdout, /made/);
    assert.ok(existsSync(path.join(clonesDir(), id)), 'kept across stop');

    await rig.docker(['start', id]);
    const inside = await rig.docker(['exec', id, 'stat', '-c', '%u:%g', '/made-inside', '/bin/busybox']);
    assert.equal(inside.stdout.trim(), '0:0\n0:0');
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
  await waitFor('the clone goes with docker rm', () => !existsSync(path.join(clonesDir(), id)));
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
});

test('clone mode with --rm removes the clone when the container exits', async () => {
  const name = 'clone-autoremove';
  const r = await runWithId(['--rm', '--name', name, ...CLONE, 'bb:local', 'true']);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(registeredMode(r.id), 'clone', 'a clone was made');
  await waitFor('no clone left', () => !existsSync(path.join(clonesDir(), r.id)));
  assert.deepEqual(readdirSync(clonesDir()), []);
});

test('clone mode: a writable bind source is re-owned while the container runs and restored at stop', async () => {
  const dir = path.join(scratch, 'bind');
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'sub', 'file'), 'x');
  const id = (await rig.run(['-d', ...CLONE_HOST_ROOT_BINDS, '-v', `${dir}:/data`, 'bb:local', 'sleep', '1000'])).stdout.trim();
  try {
    assert.equal(registeredMode(id), 'clone');
    const root = await hostRoot(id);
    const inside = await rig.docker(['exec', id, 'sh', '-c', 'stat -c %u:%g /data /data/sub/file && touch /data/by-root && stat -c %u /data/by-root']);
    assert.equal(inside.stdout.trim(), '0:0\n0:0\n0');
    assert.equal(owner(path.join(dir, 'sub', 'file')), `${root}:${root}`);
    await rig.docker(['stop', '-t', '1', id]);
    for (const p of ['.', 'sub', 'sub/file', 'by-root']) assert.equal(owner(path.join(dir, p)), '0:0', p);
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
});

test('a bind source already re-owned for another running container is left alone for the second', async () => {
  const dir = path.join(scratch, 'shared');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'file'), 'x');
  const first = (await rig.run(['-d', ...CLONE_HOST_ROOT_BINDS, '-v', `${dir}:/data`, 'bb:local', 'sleep', '1000'])).stdout.trim();
  const second = (await rig.run(['-d', ...CLONE_HOST_ROOT_BINDS, '-v', `${dir}:/data`, 'bb:local', 'sleep', '1000'])).stdout.trim();
  try {
    const root = await hostRoot(first);
    assert.equal(owner(path.join(dir, 'file')), `${root}:${root}`, 'still owned by the first container');
    assert.match(rig.mgr.log(), new RegExp(`bind source ${dir} is already re-owned for container ${first}`));
    await rig.docker(['rm', '-f', second]);
    assert.equal(owner(path.join(dir, 'file')), `${root}:${root}`, 'the second one does not revert what it did not do');
    await rig.docker(['stop', '-t', '1', first]);
    assert.equal(owner(path.join(dir, 'file')), '0:0');
  } finally {
    await rig.docker(['rm', '-f', first, second], { reject: false });
  }
});

test('chown mode under dockerd: the merged rootfs is shifted in place while it runs and shifted back at stop', async () => {
  const id = (await rig.run(['-d', '--runtime=sysrunc-chown', 'bb:local', 'sh', '-c', 'touch /made-inside; exec sleep 1000'])).stdout.trim();
  const upper = await inspect(rig.d, id, '{{.GraphDriver.Data.UpperDir}}');
  try {
    assert.equal(registeredMode(id), 'chown');
    const inside = await rig.docker(['exec', id, 'stat', '-c', '%u:%g', '/bin/busybox', '/made-inside']);
    assert.equal(inside.stdout.trim(), '0:0\n0:0');
    const root = await hostRoot(id);
    await waitFor('the container wrote its file', () => existsSync(path.join(upper, 'made-inside')));
    assert.equal(owner(path.join(upper, 'made-inside')), `${root}:${root}`);
    await rig.docker(['stop', '-t', '1', id]);
    assert.equal(owner(path.join(upper, 'made-inside')), '0:0');
    assert.equal(owner(path.join(upper, 'bin', 'busybox')), '0:0', 'copied up by the chown, and shifted back');
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
  }
});

test('symlinks to host files in the image or a bind source are never followed by the chown', async () => {
  const victimDir = path.join(scratch, 'victim');
  mkdirSync(victimDir, { recursive: true });
  writeFileSync(path.join(victimDir, 'file'), 'host file');
  const bind = path.join(scratch, 'bind-with-links');
  mkdirSync(bind, { recursive: true });
  const mk = await rig.docker(['run', '--runtime=runc', '--name', 'mk-links', 'bb:local', 'sh', '-c', `ln -s ${victimDir}/file /link-file && ln -s ${victimDir} /link-dir && ln -s /etc /link-etc`]);
  assert.equal(mk.exitCode, 0);
  await rig.docker(['commit', 'mk-links', 'links:local']);
  await rig.docker(['rm', 'mk-links']);
  await rig.docker(['run', '--rm', '--runtime=runc', '-v', `${bind}:/b`, 'bb:local', 'sh', '-c', `ln -s ${victimDir}/file /b/link-file && ln -s ${victimDir} /b/link-dir && ln -s /etc/passwd /b/link-passwd`]);
  const etcBefore = owner('/etc/passwd');
  const id = (await rig.run(['-d', ...CLONE_HOST_ROOT_BINDS, '-v', `${bind}:/b`, 'links:local', 'sleep', '1000'])).stdout.trim();
  try {
    // Checked while it runs, when the clone and the bind source are chowned into its range.
    assert.equal(registeredMode(id), 'clone');
    const root = await hostRoot(id);
    assert.ok(existsSync(path.join(clonesDir(), id)), 'the clone exists');
    assert.equal(owner(bind), `${root}:${root}`, 'the bind source was chowned');
    assert.equal(owner(path.join(bind, 'link-file')), `${root}:${root}`, 'the link itself was chowned');
    const inside = await rig.docker(['exec', id, 'sh', '-c', 'stat -c %u /b /b/link-file && readlink /b/link-file']);
    assert.equal(inside.stdout.trim(), `0\n0\n${victimDir}/file`, inside.stderr);
    assert.equal(owner(path.join(victimDir, 'file')), '0:0');
    assert.equal(owner(victimDir), '0:0');
    assert.equal(owner('/etc/passwd'), etcBefore);
    assert.equal(owner('/etc'), '0:0');
    assert.equal(statSync(path.join(bind, 'link-file')).uid, 0, 'the link target is untouched');
  } finally {
    await rig.docker(['rm', '-f', id], { reject: false });
    await rig.docker(['rmi', 'links:local'], { reject: false });
  }
  assert.equal(owner(path.join(victimDir, 'file')), '0:0');
  assert.equal(owner('/etc/passwd'), etcBefore);
});

test('a writable bind mount of a host system directory is refused in clone mode, nothing left behind', async () => {
  const r = await rig.run(['--rm', '--name', 'sysdir', ...CLONE_HOST_ROOT_BINDS, '-v', '/usr/share:/x', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /refusing to chown \/usr\/share for container [0-9a-f]+: it is a host system path/);
  assert.equal(owner('/usr/share'), '0:0');
  await rig.docker(['rm', '-f', 'sysdir'], { reject: false });
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
});

test('a read-only bind mount is never re-owned in clone mode', async () => {
  const dir = path.join(scratch, 'ro');
  mkdirSync(dir, { recursive: true });
  const r = await rig.run(['--rm', ...CLONE_HOST_ROOT_BINDS, '-v', `${dir}:/ro:ro`, 'bb:local', 'sh', '-c', 'stat -c %u /ro && cat /proc/self/uid_map']);
  const [inside, ...map] = r.stdout.trim().split('\n');
  assert.equal(inside, '65534', r.stdout);
  assert.ok((parseIdMap(map.join('\n'))[0]?.hostID ?? 0) > 0, `root inside is not host root: ${r.stdout}`);
  assert.equal(owner(dir), '0:0');
});

test('forcing shiftfs where the module is absent is a one-line error naming the setting, nothing left behind', async () => {
  const r = await rig.run(['--rm', '--runtime=sysrunc-shiftfs', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /runtime flag --sysrunc-ownership: ownership mode shiftfs was forced but cannot work here: shiftfs is not available on this host \(shiftfs is not registered in \/proc\/filesystems/);
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
});

test('nothing is left behind once the containers are removed', async () => {
  assert.deepEqual(await leftovers(rig.mgr), NOTHING_LEFT);
  assert.deepEqual(readdirSync(clonesDir()), []);
});
