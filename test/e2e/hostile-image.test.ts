// Issue 17: an image cannot pick its own security settings. Docker builds a container's environment
// from the image's ENV, so an image whose ENV sets every SYSRUNC_* setting to its most permissive
// value must run with the safe defaults; the operator's ways (a second runtime whose daemon.json
// runtimeArgs carry --sysrunc-<name>=<value>, the manager's defaults and bound) still work.
// The same under containerd's CRI, and the annotation way: test/e2e/hostile-image-cri.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import path from 'node:path';
import { startDockerd, type DockerDaemon, type ExecResult } from '../rig/dockerd.ts';
import { ensureBusyboxRootfs, ensureDockerImage, ensureRootfsTar } from '../rig/images.ts';
import { execTool } from '../rig/exec.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { HOSTILE_ENV, WIDENING_ENV } from './hostile-env.ts';
import { containerId, hostOwner, leftovers, managerList, NOTHING_LEFT, parseIdMap, stopOwnDockerd } from './helpers.ts';

const RIG = 'e2e-hostile';
const HOSTILE_IMAGE = 'hostile:local';
/** The manager's own default range size and its bound, both set by the operator here. */
const DEFAULT_SIZE = 131072;
const MAX_SIZE = 262144;

let mgr: TestManager;
let d: DockerDaemon;
let work: string;

before(async () => {
  work = mkdtempSync('/var/tmp/sysrunc-e2e-hostile-');
  mgr = await startTestManager({ name: RIG, extraArgs: ['--subid-size', String(DEFAULT_SIZE), '--max-subid-size', String(MAX_SIZE)] });
  d = await startDockerd({
    name: RIG,
    runtimes: {
      sysrunc: { path: SYSRUNC },
      // The operator's second runtimes (config/daemon.json).
      'sysrunc-host-root-binds': { path: SYSRUNC, runtimeArgs: ['--sysrunc-bind-ownership=host-root'] },
      'sysrunc-max-ids': { path: SYSRUNC, runtimeArgs: [`--sysrunc-userns-size=${MAX_SIZE}`] },
      'sysrunc-over-bound': { path: SYSRUNC, runtimeArgs: [`--sysrunc-userns-size=${MAX_SIZE * 2}`] },
      'sysrunc-bad-value': { path: SYSRUNC, runtimeArgs: ['--sysrunc-bind-ownership=everything'] },
    },
    env: mgr.env,
  });
  await ensureDockerImage(d);
  const tar = await ensureRootfsTar(await ensureBusyboxRootfs());
  const env = Object.entries(HOSTILE_ENV).flatMap(([k, v]) => ['--change', `ENV ${k}=${v}`]);
  await d.docker(['import', '--change', 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...env, tar, HOSTILE_IMAGE]);
});

after(() => stopOwnDockerd(d, mgr, work));

const run = (args: readonly string[], opts?: { reject?: boolean }): Promise<ExecResult> => d.docker(['run', '--runtime=sysrunc', ...args], opts);

/** A host directory every uid may write into, for a -v bind. */
async function writableDir(name: string): Promise<string> {
  const dir = path.join(work, name);
  await execTool('mkdir', ['-m', '0777', dir], process.env);
  return dir;
}

test('the hostile image really carries the variables in its environment (the control)', async () => {
  const r = await run(['--rm', HOSTILE_IMAGE, 'sh', '-c', 'env | grep ^SYSRUNC_ | sort']);
  assert.equal(r.stdout.trim(), Object.entries(HOSTILE_ENV).map(([k, v]) => `${k}=${v}`).sort().join('\n'));
});

test("a hostile image gets the manager's default range size, not the size its ENV asks for", async () => {
  const r = await run(['--rm', HOSTILE_IMAGE, 'sh', '-c', 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map']);
  for (const map of r.stdout.split('--').map(parseIdMap)) assert.equal(map[0]?.size, DEFAULT_SIZE, r.stdout);
});

test('what a hostile image\'s root writes through a -v bind is owned on the host by its own range, not host root', async () => {
  const vol = await writableDir('vol-written');
  const r = await run(['--rm', '-v', `${vol}:/data`, HOSTILE_IMAGE, 'sh', '-c', 'mkdir /data/dir && echo x > /data/dir/file && cat /proc/self/uid_map']);
  const base = parseIdMap(r.stdout)[0]?.hostID ?? 0;
  assert.ok(base > 0, r.stdout);
  assert.deepEqual(hostOwner(path.join(vol, 'dir')), { uid: base, gid: base });
  assert.deepEqual(hostOwner(path.join(vol, 'dir', 'file')), { uid: base, gid: base });
});

test('a setuid file a hostile image\'s root makes in a -v bind is not setuid-root on the host', async () => {
  const vol = await writableDir('vol-setuid');
  await run(['--rm', '-v', `${vol}:/data`, HOSTILE_IMAGE, 'sh', '-c', 'cp /bin/busybox /data/x && chmod 4755 /data/x']);
  const st = statSync(path.join(vol, 'x'));
  assert.equal(st.mode & 0o4000, 0o4000, 'the setuid bit is there');
  assert.notEqual(st.uid, 0, 'a setuid file owned by host root');
});

test('a hostile image cannot turn the system container off to join the host network namespace', async () => {
  const r = await run(['--rm', '--network', 'host', HOSTILE_IMAGE, 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0, 'ran in the host network namespace');
  assert.match(r.stderr, /the network namespace is the host's \(--network host\)/);
});

test("a hostile image's files get the manager's ownership mode (idmap), not the chown its ENV asks for", async () => {
  const id = (await run(['-d', HOSTILE_IMAGE, 'sleep', '1000'])).stdout.trim();
  try {
    const registered = mgr.log().split('\n').find((line) => line.includes(`"id":"${id}"`) && line.includes('registered container'));
    assert.match(registered ?? '', /"ownership":\{"mode":"idmap"/, registered);
  } finally {
    await d.docker(['rm', '-f', id]);
  }
});

test("the harmless SYSRUNC_SYSTEMD=true of a hostile image is taken: a tmpfs /run and container=sysrunc", async () => {
  const r = await run(['--rm', HOSTILE_IMAGE, 'sh', '-c', 'awk \'$5 == "/run" { print $9 }\' /proc/self/mountinfo; echo "$container"']);
  assert.equal(r.stdout.trim(), 'tmpfs\nsysrunc');
});

test("the manager's log warns of each SYSRUNC_ variable it ignored, naming it", async () => {
  await run(['--rm', '--name', 'warned', HOSTILE_IMAGE, 'true']);
  const log = mgr.log();
  for (const name of WIDENING_ENV) assert.match(log, new RegExp(`"level":40[^\\n]*ignored setting: environment variable ${name}: [^\\n]*ignored`), name);
});

test('a runtime the operator registered with --sysrunc-bind-ownership=host-root maps host root to container root in -v binds', async () => {
  const vol = await writableDir('vol-operator');
  await d.docker(['run', '--runtime=sysrunc-host-root-binds', '--rm', '-v', `${vol}:/data`, 'bb:local', 'sh', '-c', 'echo x > /data/by-root']);
  assert.deepEqual(hostOwner(path.join(vol, 'by-root')), { uid: 0, gid: 0 });
});

test('a runtime the operator registered with --sysrunc-userns-size gives that range size, over the manager\'s default', async () => {
  const r = await d.docker(['run', '--runtime=sysrunc-max-ids', '--rm', 'bb:local', 'cat', '/proc/self/uid_map']);
  assert.equal(parseIdMap(r.stdout)[0]?.size, MAX_SIZE, r.stdout);
});

test('a range over the manager\'s --max-subid-size is refused with one line naming the bound and the setting, nothing left', async () => {
  const r = await d.docker(['run', '--runtime=sysrunc-over-bound', '--name', 'over-bound', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, new RegExp(`sysrunc: runtime flag --sysrunc-userns-size: container [0-9a-f]+: ${MAX_SIZE * 2} ids is over the manager's bound of ${MAX_SIZE} ids per container \\(sysrunc-mgr --max-subid-size\\)`));
  const id = await containerId(d, 'over-bound');
  assert.equal((await managerList(mgr)).some((c) => c.id === id), false);
  await d.docker(['rm', 'over-bound']);
});

test('a runtime flag with a bad value is refused with one line naming the flag and the values it takes', async () => {
  const r = await d.docker(['run', '--runtime=sysrunc-bad-value', '--rm', 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /sysrunc: runtime flag --sysrunc-bind-ownership: "everything" is not one of container, host-root/);
});

test('nothing is left once every container is gone', async () => {
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
