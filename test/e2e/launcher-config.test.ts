// A config file ($SYSRUNC_CONFIG) naming the manager socket, on one line (as JSON.stringify writes
// it) or pretty-printed: bin/sysrunc finds the manager's hints beside that socket, so a store-volume
// container's delete takes the synchronous form (runc's delete run as bin/sysrunc's child, then the
// sync-out) and an exec into a system container gets the system container's capabilities.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startDockerd, type DockerDaemon } from '../rig/dockerd.ts';
import { ensureDockerImage } from '../rig/images.ts';
import { bins } from '../rig/paths.ts';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { leftovers, NOTHING_LEFT, shellScript, stopOwnDockerd } from './helpers.ts';

const RIG = 'e2e-launcher-config';
/** bb:local plus an empty /var/lib/docker: a system container with a store volume there. */
const STORE_IMAGE = 'bb-store:local';
const FORMATS = {
  'one-line': (o: object): string => JSON.stringify(o),
  'pretty-printed': (o: object): string => `${JSON.stringify(o, null, 2)}\n`,
} as const;
type Format = keyof typeof FORMATS;

let mgr: TestManager;
let d: DockerDaemon;
let work: string;

before(async () => {
  work = mkdtempSync('/var/tmp/sysrunc-e2e-launcher-config-');
  mgr = await startTestManager({ name: RIG });
  const runtimes: Record<string, { path: string }> = {};
  for (const [format, write] of Object.entries(FORMATS) as [Format, (o: object) => string][]) {
    // The real runc, logging each call with the name of the process that started it.
    const runtime = shellScript(work, `runc-${format}`, `echo "$(cat /proc/$PPID/comm): $*" >> '${runtimeLog(format)}'\nexec '${bins.runc}' "$@"`);
    const config = path.join(work, `${format}.json`);
    writeFileSync(config, write({ runtime, managerSocket: mgr.socket }));
    const launcher = shellScript(work, `sysrunc-${format}`, `unset SYSRUNC_MGR_SOCKET SYSRUNC_RUNTIME\nSYSRUNC_CONFIG='${config}' exec '${SYSRUNC}' "$@"`);
    runtimes[`sysrunc-${format}`] = { path: launcher };
  }
  d = await startDockerd({ name: RIG, runtimes, env: mgr.env });
  await ensureDockerImage(d);
  await d.docker(['rm', '-f', 'make-store'], { reject: false });
  await d.docker(['run', '--runtime=runc', '--name', 'make-store', 'bb:local', 'mkdir', '-p', '/var/lib/docker']);
  await d.docker(['commit', 'make-store', STORE_IMAGE]);
  await d.docker(['rm', 'make-store']);
});

after(() => stopOwnDockerd(d, mgr, work));

const runtimeLog = (format: Format): string => path.join(work, `runc-${format}.log`);

for (const format of Object.keys(FORMATS) as Format[]) {
  test(`${format} config: stopping a store-volume container runs the synchronous delete, which syncs the volume out`, async () => {
    const id = (await d.docker(['run', '-d', `--runtime=sysrunc-${format}`, STORE_IMAGE, 'sleep', '1000'])).stdout.trim();
    try {
      await d.docker(['exec', id, 'sh', '-c', 'echo kept > /var/lib/docker/probe']);
      await d.docker(['stop', '-t', '0', id]);
      const deletes = readFileSync(runtimeLog(format), 'utf8').split('\n').filter((line) => new RegExp(`: .*\\bdelete\\b.*${id}`).test(line));
      // The asynchronous form execs runc in bin/sysrunc's place (its parent: the shim). A later
      // delete (the shim's cleanup) finds no hint left, so only the first counts.
      assert.match(deletes[0] ?? 'no delete', /^sysrunc: /, `run by bin/sysrunc, which then asks the manager to sync out:\n${deletes.join('\n')}`);
      assert.match(mgr.log(), new RegExp(`"id":"${id}"[^\\n]*"msg":"synced store volumes out"`));
      assert.equal((await d.docker(['cp', `${id}:/var/lib/docker/probe`, '-'])).exitCode, 0, 'the data is in the stopped container');
    } finally {
      await d.docker(['rm', '-f', id], { reject: false });
    }
  });

  test(`${format} config: docker exec into a system container gets its init's capabilities`, async () => {
    const id = (await d.docker(['run', '-d', `--runtime=sysrunc-${format}`, 'bb:local', 'sleep', '1000'])).stdout.trim();
    try {
      const init = await d.docker(['exec', id, 'grep', 'CapEff', '/proc/1/status']);
      const exec = await d.docker(['exec', id, 'grep', 'CapEff', '/proc/self/status']);
      assert.equal(exec.stdout.trim(), init.stdout.trim());
    } finally {
      await d.docker(['rm', '-f', id], { reject: false });
    }
  });
}

test('nothing is left behind once the containers are removed', async () => {
  assert.deepEqual(await leftovers(mgr), NOTHING_LEFT);
});
