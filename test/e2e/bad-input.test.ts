// Issue 3, bad input: an exhausted allocator, malformed sysrunc settings and a filesystem that
// cannot be idmapped each fail the create with a clear one-line error, and leave nothing behind.
// The manager of this file has room for exactly two containers (131072 subordinate ids).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execTool, type ExecResult } from '../rig/exec.ts';
import { ensureBusyboxRootfs, makeBundle } from '../rig/images.ts';
import { bins } from '../rig/paths.ts';
import { containerId, leftovers, managerList, NOTHING_LEFT, scratchDir, startE2ERig, SYSRUNC, type E2ERig, type Leftovers } from './helpers.ts';

const SUBID_BASE = 268435456;
let rig: E2ERig;
let work: string;
/** An overlay mount of our own: <work>/ovl/merged, holding sub/ (a -v source) and rootfs/. */
let merged: string;

before(async () => {
  work = scratchDir('bad-input');
  rig = await startE2ERig('e2e-bad-input', { subid: `sysrunc:${SUBID_BASE}:131072\n` });
  const ovl = path.join(work, 'ovl');
  for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(path.join(ovl, d), { recursive: true });
  mkdirSync(path.join(ovl, 'lower', 'sub'));
  await execTool('cp', ['-a', '--', await ensureBusyboxRootfs(), path.join(ovl, 'lower', 'rootfs')], process.env);
  merged = path.join(ovl, 'merged');
  await execTool('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ovl}/lower,upperdir=${ovl}/upper,workdir=${ovl}/work`, merged], process.env);
});
after(async () => {
  try {
    await rig?.dispose();
  } finally {
    if (merged !== undefined) await execTool('umount', [merged], process.env, { reject: false });
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }
});

/** Runs `fn` with both of the manager's two ranges held by running containers, removed afterwards. */
async function withRangesExhausted(fn: (holders: string[]) => Promise<void>): Promise<void> {
  const holders = ['holder-1', 'holder-2'];
  try {
    for (const name of holders) await rig.run(['-d', '--name', name, 'bb:local', 'sleep', '1000']);
    await fn(holders);
  } finally {
    await rig.docker(['rm', '-f', ...holders], { reject: false });
  }
}

test('with every subordinate id held, docker run fails with an "exhausted" error', async () => {
  await withRangesExhausted(async () => {
    const r = await rig.run(['--rm', 'bb:local', 'true'], { reject: false });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /exhausted: no free range of 65536 ids left in sysrunc's 131072 subordinate ids/);
  });
});

test('a docker run refused for exhaustion leaves no mount, record, run dir or allocation, and the holders keep theirs', async () => {
  await withRangesExhausted(async (holders) => {
    const r = await rig.run(['--name', 'one-too-many', 'bb:local', 'true'], { reject: false });
    assert.notEqual(r.exitCode, 0);
    const id = await containerId(rig.d, 'one-too-many');
    assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
    await rig.docker(['rm', 'one-too-many']);
    const holderIds = await Promise.all(holders.map((h) => containerId(rig.d, h)));
    assert.deepEqual((await managerList(rig.mgr)).map((c) => c.id).sort(), holderIds.sort());
  });
});

test('a range given back by docker rm is handed out again', async () => {
  await withRangesExhausted(async (holders) => {
    await rig.docker(['rm', '-f', holders[0] as string]);
    const r = await rig.run(['--rm', 'bb:local', 'cat', '/proc/self/uid_map'], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
  });
});

// Malformed settings, at the OCI level (Docker 20.10 cannot set annotations): `sysrunc run` on a bundle.

interface DirectRun extends ExecResult {
  configBefore: Buffer;
  configAfter: Buffer;
  originalKept: boolean;
  left: Leftovers;
  runcContainers: string;
}

/** `sysrunc --root <r> run --bundle <b> <id>` on a busybox bundle changed by `edit`, and what it left. */
async function runBundle(id: string, edit: (spec: Record<string, unknown>) => void): Promise<DirectRun> {
  const b = await makeBundle(path.join(work, id), await ensureBusyboxRootfs(), ['true']);
  const spec = JSON.parse(readFileSync(b.config, 'utf8')) as Record<string, unknown>;
  edit(spec);
  writeFileSync(b.config, `${JSON.stringify(spec, null, '\t')}\n`);
  const configBefore = readFileSync(b.config);
  const root = path.join(work, 'runc-root');
  const r = await execTool(SYSRUNC, ['--root', root, 'run', '--bundle', b.bundle, id], { ...process.env, ...rig.mgr.env }, { reject: false, timeoutMs: 60_000 });
  const list = await execTool(bins.runc, ['--root', root, 'list', '-q'], process.env, { reject: false });
  return {
    ...r,
    configBefore,
    configAfter: readFileSync(b.config),
    originalKept: existsSync(path.join(b.bundle, 'config.json.sysrunc-orig')),
    left: await leftovers(rig.mgr, [id]),
    runcContainers: list.stdout,
  };
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

const annotationCases = [
  { id: 'ann-size-abc', key: 'io.sysrunc.userns.size', value: 'abc', todo: undefined },
  { id: 'ann-size-100', key: 'io.sysrunc.userns.size', value: '100', todo: undefined },
  { id: 'ann-unknown', key: 'io.sysrunc.unknown', value: '1', todo: undefined },
] as const;

for (const c of annotationCases) {
  const outcome = once(() => runBundle(c.id, (spec) => (spec['annotations'] = { [c.key]: c.value })));
  const label = `annotation ${c.key}: "${c.value}"`;

  test(`${label}: sysrunc run exits 1 with a one-line error naming the annotation`, { todo: c.todo }, async () => {
    const r = await outcome();
    assert.equal(r.exitCode, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^sysrunc: /);
    assert.ok(r.stderr.includes(`annotation ${c.key}`), r.stderr);
  });

  test(`${label}: config.json is unchanged byte for byte and no original copy is left`, async () => {
    const r = await outcome();
    assert.ok(r.configAfter.equals(r.configBefore), r.configAfter.toString());
    assert.equal(r.originalKept, false);
  });

  test(`${label}: no mount, manager record, run dir, allocation or runc container is left`, async () => {
    const r = await outcome();
    assert.deepEqual(r.left, NOTHING_LEFT);
    assert.equal(r.runcContainers, '');
  });
}

// SYSRUNC_* variables in the container's environment are never an error: test/e2e/hostile-image.test.ts.

// Filesystems that cannot be idmapped: a directory inside an overlay mount (overlayfs lets its
// layers be idmapped, not its own mounts). With ownership mode auto sysrunc falls back to chown
// (test/e2e/ownership-*.test.ts); with idmap forced, it must refuse.
// Binds get host-root ownership only when asked for (the default keeps the container's range).
const HOST_ROOT_BINDS = ['--runtime=sysrunc-host-root-binds'];
const IDMAP_ONLY = ['--runtime=sysrunc-idmap-host-root-binds'];

test('with idmap forced, docker run -v <dir on overlayfs>:/x fails with an error naming the filesystem', async () => {
  const source = path.join(merged, 'sub');
  const r = await rig.run(['--rm', ...IDMAP_ONLY, '-v', `${source}:/x`, 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  assert.ok(r.stderr.includes(source), r.stderr);
  assert.match(r.stderr, /idmapped mounts not supported by filesystem overlay/);
});

test('a docker run refused for a -v source on overlayfs leaves no mount, record, run dir or allocation', async () => {
  const r = await rig.run(['--name', 'ovl-volume', ...IDMAP_ONLY, '-v', `${path.join(merged, 'sub')}:/x`, 'bb:local', 'true'], { reject: false });
  assert.notEqual(r.exitCode, 0);
  const id = await containerId(rig.d, 'ovl-volume');
  assert.deepEqual(await leftovers(rig.mgr, [id]), NOTHING_LEFT);
  await rig.docker(['rm', 'ovl-volume']);
});

test('in ownership mode auto with host-root binds, a -v source on overlayfs is chowned instead: root-owned inside, host root again after exit', async () => {
  const source = path.join(merged, 'sub');
  const r = await rig.run(['--rm', ...HOST_ROOT_BINDS, '-v', `${source}:/x`, 'bb:local', 'sh', '-c', 'touch /x/by-root && stat -c %u:%g /x /x/by-root && cat /proc/self/uid_map'], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  const [owners1, owners2, uidMap = ''] = r.stdout.trim().split('\n');
  assert.deepEqual([owners1, owners2], ['0:0', '0:0']);
  assert.notEqual(uidMap.trim().split(/\s+/)[1], '0', `container root is host root: ${uidMap}`);
  assert.equal(statSync(path.join(source, 'by-root')).uid, 0);
  assert.equal(statSync(source).uid, 0);
});

const overlayRootfs = once(() =>
  runBundle('ovl-rootfs', (spec) => {
    spec['root'] = { path: path.join(merged, 'rootfs'), readonly: false };
    spec['annotations'] = { 'io.sysrunc.ownership': 'idmap' };
  }),
);

test('with idmap forced, a bundle whose rootfs is a directory on overlayfs: sysrunc run exits 1 with a one-line error naming the filesystem', async () => {
  const r = await overlayRootfs();
  assert.equal(r.exitCode, 1);
  assert.equal(r.stderr.split('\n').length, 1, r.stderr);
  assert.ok(r.stderr.includes(path.join(merged, 'rootfs')), r.stderr);
  assert.match(r.stderr, /idmapped mounts not supported by filesystem overlay/);
});

test('with idmap forced, a bundle whose rootfs is a directory on overlayfs: nothing is left and config.json is unchanged', async () => {
  const r = await overlayRootfs();
  assert.deepEqual(r.left, NOTHING_LEFT);
  assert.equal(r.runcContainers, '');
  assert.ok(r.configAfter.equals(r.configBefore));
  assert.equal(r.originalKept, false);
});
