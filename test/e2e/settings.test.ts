// Valid per-container settings each do what the README says (the widening ones through a runtime the
// operator registered with --sysrunc-<name>=<value> runtimeArgs, the harmless ones through
// docker run -e SYSRUNC_<NAME>), and
// sysrunc's own config file ($SYSRUNC_CONFIG) names the real runtime and the manager socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startDockerd, type DockerDaemon, type ExecResult } from '../rig/dockerd.ts';
import { ensureDockerImage } from '../rig/images.ts';
import { bins } from '../rig/paths.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { leftovers, NOTHING_LEFT, parseIdMap, shellScript, stopOwnDockerd } from './helpers.ts';

const RIG = 'e2e-settings';
/** bb:local plus an empty /var/lib/docker: an image that gets a store volume by default. */
const STORE_IMAGE = 'bb-store:local';
/** bb:local whose /sbin/init is "systemd" (a script that runs its arguments): auto detects systemd. */
const FAKE_SYSTEMD_IMAGE = 'bb-fake-systemd:local';

let mgr: TestManager;
let d: DockerDaemon;
let work: string;
let runtimeLog: string;

before(async () => {
  work = mkdtempSync('/var/tmp/sysrunc-e2e-settings-');
  mgr = await startTestManager({ name: RIG });
  // A second runtime name whose only source of runtime and manager socket is a config file.
  runtimeLog = path.join(work, 'runc-calls.log');
  const loggingRunc = shellScript(work, 'logging-runc', `echo "$*" >> '${runtimeLog}'\nexec '${bins.runc}' "$@"`);
  const config = path.join(work, 'sysrunc.json');
  writeFileSync(config, JSON.stringify({ runtime: loggingRunc, managerSocket: mgr.socket }));
  const viaConfig = shellScript(work, 'sysrunc-via-config', `unset SYSRUNC_MGR_SOCKET SYSRUNC_RUNTIME\nSYSRUNC_CONFIG='${config}' exec '${SYSRUNC}' "$@"`);
  d = await startDockerd({
    name: RIG,
    runtimes: {
      sysrunc: { path: SYSRUNC },
      'sysrunc-config': { path: viaConfig },
      'sysrunc-131072-ids': { path: SYSRUNC, runtimeArgs: ['--sysrunc-userns-size=131072'] },
      'sysrunc-caller-caps': { path: SYSRUNC, runtimeArgs: ['--sysrunc-capabilities=caller'] },
    },
    env: mgr.env,
  });
  await ensureDockerImage(d);
  await derivedImage(STORE_IMAGE, 'mkdir -p /var/lib/docker');
  await derivedImage(FAKE_SYSTEMD_IMAGE, 'mkdir -p /lib/systemd && printf "#!/bin/sh\\nexec \\"\\$@\\"\\n" > /lib/systemd/systemd && chmod 755 /lib/systemd/systemd && rm -f /sbin/init && ln -s /lib/systemd/systemd /sbin/init');
});

after(() => stopOwnDockerd(d, mgr, work));

/** An image made from bb:local by one shell command run under plain runc. */
async function derivedImage(tag: string, command: string): Promise<void> {
  const name = `make-${tag.replace(/[^a-z0-9]/g, '-')}`;
  await d.docker(['rm', '-f', name], { reject: false });
  await d.docker(['run', '--runtime=runc', '--name', name, 'bb:local', 'sh', '-c', command]);
  await d.docker(['commit', name, tag]);
  await d.docker(['rm', name]);
}

const run = (args: readonly string[]): Promise<ExecResult> => d.docker(['run', '--runtime=sysrunc', ...args]);

/** Mount points (mountinfo field 5) and their fs types (after the " - " separator) inside. */
function mountPoints(mountinfo: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    if (mountPoint !== undefined && right !== undefined) out.set(mountPoint, right.split(' ')[0] ?? '');
  }
  return out;
}

/** What a container shows of its systemd setting: its /run mount's fs type and $container. */
const SYSTEMD_PROBE = 'awk \'$5 == "/run" { print "run=" $9 }\' /proc/self/mountinfo; echo "container=$container"';

test('a runtime registered with --sysrunc-userns-size=131072 gives the container a 131072-id uid and gid map, not the default 65536', async () => {
  const r = await run(['--rm', '--runtime=sysrunc-131072-ids', 'bb:local', 'sh', '-c', 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map']);
  const [uid, gid] = r.stdout.split('--').map(parseIdMap);
  for (const map of [uid, gid]) {
    assert.equal(map?.length, 1, r.stdout);
    assert.equal(map?.[0]?.containerID, 0);
    assert.ok((map?.[0]?.hostID ?? 0) > 0, r.stdout);
    assert.equal(map?.[0]?.size, 131072, r.stdout);
  }
});

test('by default an image with /var/lib/docker gets a store volume there (the control for the next test)', async () => {
  const id = (await run(['-d', STORE_IMAGE, 'sleep', '1000'])).stdout.trim();
  try {
    const mounts = mountPoints((await d.docker(['exec', id, 'cat', '/proc/self/mountinfo'])).stdout);
    assert.ok(mounts.has('/var/lib/docker'), [...mounts.keys()].join('\n'));
    assert.ok(readdirSync(path.join(mgr.stateDir, 'volumes')).includes(id));
  } finally {
    await d.docker(['rm', '-f', id], { reject: false });
  }
});

test('SYSRUNC_STORE_VOLUMES=false gives no store volume: /var/lib/docker stays in the rootfs, no host volume dir', async () => {
  const id = (await run(['-d', '-e', 'SYSRUNC_STORE_VOLUMES=false', STORE_IMAGE, 'sleep', '1000'])).stdout.trim();
  try {
    const mounts = mountPoints((await d.docker(['exec', id, 'cat', '/proc/self/mountinfo'])).stdout);
    assert.equal(mounts.has('/var/lib/docker'), false, [...mounts.keys()].join('\n'));
    assert.equal(mounts.get('/'), 'overlay', 'it is part of the overlay rootfs');
    const volumes = path.join(mgr.stateDir, 'volumes');
    assert.deepEqual(readdirSync(volumes).filter((n) => n === id), []);
  } finally {
    await d.docker(['rm', '-f', id], { reject: false });
  }
});

test('with systemd as /sbin/init, the default (auto) gives it a tmpfs /run and container=sysrunc', async () => {
  const r = await run(['--rm', FAKE_SYSTEMD_IMAGE, '/sbin/init', 'sh', '-c', SYSTEMD_PROBE]);
  assert.equal(r.stdout.trim(), 'run=tmpfs\ncontainer=sysrunc', r.stderr);
});

test('SYSRUNC_SYSTEMD=false gives systemd as /sbin/init neither a tmpfs /run nor container=sysrunc', async () => {
  const r = await run(['--rm', '-e', 'SYSRUNC_SYSTEMD=false', FAKE_SYSTEMD_IMAGE, '/sbin/init', 'sh', '-c', SYSTEMD_PROBE]);
  assert.equal(r.stdout.trim(), 'container=', r.stderr);
});

test('SYSRUNC_SYSTEMD=true gives a container whose process is not systemd a tmpfs /run and container=sysrunc', async () => {
  const r = await run(['--rm', '-e', 'SYSRUNC_SYSTEMD=true', 'bb:local', 'sh', '-c', SYSTEMD_PROBE]);
  assert.equal(r.stdout.trim(), 'run=tmpfs\ncontainer=sysrunc', r.stderr);
});

/** The capability sets of the container's process, as /proc/self/status shows them. */
async function capabilities(runtime: string, env: readonly string[]): Promise<string> {
  const r = await d.docker(['run', `--runtime=${runtime}`, '--rm', ...env, 'bb:local', 'grep', '^Cap', '/proc/self/status']);
  return r.stdout.trim();
}

test('a runtime registered with --sysrunc-capabilities=caller keeps the capabilities Docker asked for, the same as under plain runc', async () => {
  const plain = await capabilities('runc', []);
  assert.equal(await capabilities('sysrunc-caller-caps', []), plain);
});

test('by default (capabilities=all) root gets more capabilities than Docker asked for (the control for the test above)', async () => {
  const plain = await capabilities('runc', []);
  assert.notEqual(await capabilities('sysrunc', []), plain);
});

test('$SYSRUNC_CONFIG names the real runtime and the manager socket: both are used', async () => {
  writeFileSync(runtimeLog, '');
  const cidfile = path.join(work, 'config.cid');
  const r = await d.docker(['run', '--runtime=sysrunc-config', '--cidfile', cidfile, 'bb:local', 'cat', '/proc/self/uid_map']);
  const id = readFileSync(cidfile, 'utf8').trim();
  try {
    assert.ok((parseIdMap(r.stdout)[0]?.hostID ?? 0) > 0, `runs in a user namespace from the manager: ${r.stdout}`);
    const calls = readFileSync(runtimeLog, 'utf8');
    assert.match(calls, new RegExp(`\\bcreate\\b.*${id}`), calls);
    assert.match(calls, new RegExp(`\\bstart ${id}`), calls);
    assert.match(mgr.log(), new RegExp(`"id":"${id}"[^\\n]*"msg":"registered container"`));
  } finally {
    await d.docker(['rm', '-f', id], { reject: false });
  }
});

test('nothing is left behind once the containers are removed', async () => {
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
