// containerd's runc v2 shim runs sysrunc exactly as it runs runc: `--root <root>/<ns> --log
// <bundle>/log.json --log-format json create ...`, then start, kill, delete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startContainerd, type ContainerdDaemon } from '../rig/dockerd.ts';
import { ensureContainerdImage } from '../rig/images.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { leftovers, NOTHING_LEFT, parseIdMap } from './helpers.ts';

let mgr: TestManager;
let ctrd: ContainerdDaemon;
let image: string;

before(async () => {
  mgr = await startTestManager({ name: 'e2e-ctrd' });
  ctrd = await startContainerd({ name: 'e2e-ctrd', runtimeBinary: SYSRUNC, env: mgr.env });
  image = await ensureContainerdImage(ctrd);
});

after(async () => {
  await ctrd?.stop();
  await mgr?.dispose();
});

test('ctr run through the runc v2 shim runs the container in its own user namespace', async () => {
  const r = await ctrd.run(image, 'ctrd-userns', ['cat', '/proc/self/uid_map']);
  assert.equal(r.exitCode, 0, r.stderr);
  const map = parseIdMap(r.stdout);
  assert.equal(map[0]?.containerID, 0);
  assert.ok((map[0]?.hostID ?? 0) > 0);
});

test('the container\'s exit code comes back through the shim', async () => {
  const r = await ctrd.run(image, 'ctrd-exit', ['sh', '-c', 'exit 5'], { reject: false });
  assert.equal(r.exitCode, 5);
});

test('a sysrunc error reaches containerd from the json log, as "OCI runtime create failed"', async () => {
  const r = await ctrd.run(image, 'ctrd-bad', ['true'], { reject: false, flags: ['--annotation', 'io.sysrunc.bogus=1'] });
  assert.notEqual(r.exitCode, 0);
  assert.match(r.stderr, /annotation io\.sysrunc\.bogus: unknown sysrunc setting/);
});

test('clone mode works with the overlayfs snapshotter; the clone goes once ctr removes the snapshot', async () => {
  const r = await ctrd.run(image, 'ctrd-clone', ['sh', '-c', 'touch /new && stat -c %u:%g /new /bin/busybox'], { flags: ['--annotation', 'io.sysrunc.ownership=clone'] });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout.trim(), '0:0\n0:0');
  const clones = path.join(mgr.stateDir, 'clones');
  for (let i = 0; i < 100 && readdirSync(clones).length > 0; i++) await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(readdirSync(clones), []);
});

test('nothing is left behind once the shim deleted the containers', async () => {
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});

test('the manager log shows one register and one release per container', () => {
  const log = readFileSync(mgr.logPath, 'utf8');
  for (const id of ['ctrd-userns', 'ctrd-exit']) {
    assert.equal(log.split('\n').filter((l) => l.includes(`"id":"${id}"`) && l.includes('registered container')).length, 1, id);
    assert.equal(log.split('\n').filter((l) => l.includes(`"id":"${id}"`) && l.includes('released container')).length, 1, id);
  }
});
