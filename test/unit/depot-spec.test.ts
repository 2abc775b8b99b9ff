// The depot's configs and names (src/depot/spec.ts, layout.ts, depot-api/v1.ts), without containers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS, Name } from '../../src/depot-api/v1.ts';
import { Depot } from '../../src/depot/layout.ts';
import { containerConfig, INIT_IN_CONTAINER, processConfig } from '../../src/depot/spec.ts';
import { validateSpecDocument } from '../../src/oci/validate.ts';

test('a depot container runs the keep-alive init, bind-mounted read-only into /dev', () => {
  const config = containerConfig({ id: 'c1', rootfs: '/srv/rootfs' }, '/opt/sysrunc/dist/sysrunc-depot-init') as {
    process: { args: string[] };
    root: { path: string; readonly: boolean };
    mounts: { destination: string; source: string; options?: string[] }[];
  };
  assert.deepEqual(config.process.args, [INIT_IN_CONTAINER]);
  assert.ok(INIT_IN_CONTAINER.startsWith('/dev/'), 'the mountpoint is in runc\'s /dev tmpfs, not in the rootfs');
  assert.deepEqual(config.root, { path: '/srv/rootfs', readonly: false });
  const init = config.mounts.find((m) => m.destination === INIT_IN_CONTAINER);
  assert.equal(init?.source, '/opt/sysrunc/dist/sysrunc-depot-init');
  assert.ok(init?.options?.includes('ro'));
  const devAt = config.mounts.findIndex((m) => m.destination === '/dev');
  assert.ok(devAt >= 0 && devAt < config.mounts.indexOf(init), '/dev is mounted before the init inside it');
});

test('--cpu and --memory become a CFS quota over a 100 ms period and a memory limit, in a config the schema accepts', () => {
  const config = containerConfig({ id: 'c1', rootfs: '/srv/rootfs', cpu: 0.5, memory: 64 << 20 }, '/opt/init') as { linux: { resources: Record<string, unknown> } };
  assert.deepEqual(config.linux.resources.cpu, { quota: 50_000, period: 100_000 });
  assert.deepEqual(config.linux.resources.memory, { limit: 64 << 20 });
  const check = validateSpecDocument(config);
  assert.ok(check.ok, check.ok ? '' : check.errors.join('; '));
});

test('without --cpu and --memory a depot container has no limits', () => {
  const config = containerConfig({ id: 'c1', rootfs: '/srv/rootfs' }, '/opt/init') as { linux: { resources: Record<string, unknown> } };
  assert.deepEqual(Object.keys(config.linux.resources), ['devices']);
});

test('the API refuses a memory limit under 4 MiB and a CPU limit that is not positive', () => {
  const create = (extra: object) => METHODS.create.params.safeParse({ id: 'c1', rootfs: '/srv/rootfs', ...extra }).success;
  assert.equal(create({ memory: 1 << 20 }), false);
  assert.equal(create({ cpu: 0 }), false);
  assert.equal(create({ memory: 64 << 20, cpu: 1.5 }), true);
});

test('a process spec gets PATH, and a tty gets TERM and its initial size', () => {
  const plain = processConfig({ args: ['true'] });
  assert.equal(plain.terminal, false);
  assert.equal(plain.consoleSize, undefined);
  assert.ok(plain.env.some((e) => e.startsWith('PATH=')));
  const tty = processConfig({ args: ['sh'], tty: true, rows: 40, cols: 120, env: ['PATH=/bin'] });
  assert.deepEqual(tty.consoleSize, { height: 40, width: 120 });
  assert.deepEqual(tty.env, ['TERM=xterm', 'PATH=/bin']);
  assert.deepEqual(tty.user, { uid: 0, gid: 0 });
});

test('names that are not a plain directory name are refused by the API and by the depot', () => {
  for (const bad of ['..', '.', '.hidden', 'a/b', '', '-x', 'a\0b']) assert.equal(Name.safeParse(bad).success, false, bad);
  for (const good of ['c1', 'dpt-main_x.y', 'A+b']) assert.equal(Name.safeParse(good).success, true, good);
  const depot = new Depot('/run/depot');
  assert.throws(() => depot.containerDir('..'), /not a valid name/);
  assert.throws(() => depot.processDir('c1', 'a/b'), /not a valid name/);
  assert.equal(depot.processDir('c1', 'p1'), '/run/depot/c1/processes/p1');
});

test('signal numbers are checked by the API', () => {
  assert.equal(METHODS.signal.params.safeParse({ container: 'c', process: 'p', signal: 0 }).success, false);
  assert.equal(METHODS.signal.params.safeParse({ container: 'c', process: 'p', signal: 9 }).success, true);
});
