// The manager's sweep of records runc no longer knows. It can run between a delete's `runc delete`
// and that delete's own release call, so it must treat such a record as a stop, not a removal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { ensureBusyboxRootfs } from '../rig/images.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';

let mgr: TestManager;
let work: string;

before(async () => {
  mgr = await startTestManager({ name: 'e2e-sweep' });
  work = mkdtempSync('/var/tmp/sysrunc-e2e-sweep-');
});

after(async () => {
  await mgr.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** A pid that has exited: the create that registered the container is gone, as after an execve into runc. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

async function call<T>(fn: (c: ManagerClient) => Promise<T>): Promise<T> {
  const client = await ManagerClient.connect(mgr.socket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await check(), what);
}

test('a record runc no longer knows keeps its store volumes (as a stop) until its rootfs is gone', async () => {
  const rootfs = path.join(work, 'rootfs');
  cpSync(await ensureBusyboxRootfs(), rootfs, { recursive: true });
  mkdirSync(path.join(rootfs, 'var/lib/docker'), { recursive: true });
  writeFileSync(path.join(rootfs, 'var/lib/docker/from-image'), 'x');
  const id = 'swept-mid-delete';
  await call((c) =>
    c.call('register', {
      id,
      runtimeRoot: path.join(work, 'runc-root'),
      bundle: work,
      shimPid: deadPid(),
      shimStartTime: '',
      userns: { from: 'allocate' },
      storeVolumes: { rootfs, mountpoints: ['/var/lib/docker'], autoRemove: false },
    }),
  );
  const volume = path.join(mgr.stateDir, 'volumes', id);
  assert.ok(existsSync(volume));
  // No runc state and a dead create: the next sweep (every second here) takes the record.
  await waitFor('the sweep marked the container stopped', () => mgr.log().includes('released a container that no longer exists'));
  assert.ok(existsSync(volume), 'the volume survives the sweep');
  const listed = await call((c) => c.call('list', {}));
  assert.deepEqual(listed.containers.map((c) => c.id), [id]);

  rmSync(rootfs, { recursive: true, force: true });
  await waitFor('volumes go once the rootfs is gone', () => !existsSync(volume));
  await waitFor('the record goes too', async () => (await call((c) => c.call('list', {}))).containers.length === 0);
});
