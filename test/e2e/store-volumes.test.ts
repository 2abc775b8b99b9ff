// Issue 13: store volumes (/var/lib/docker of a dind container) live in the container's own layer,
// so `docker stop` moves no data. What users rely on stays: the inner data survives stop/start
// byte for byte, `docker commit`, `docker cp` and `docker diff` of the stopped container see it
// owned by host root, `docker rm` removes it, and a manager killed -9 in the middle of a stop
// leaves it whole for the next start. Copy mode (clone ownership) keeps the same promises.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ensureDebianImage, DEBIAN_IMAGE_TAGS } from '../rig/debian-images.ts';
import { startE2ERig, type E2ERig } from './helpers.ts';
import { contentHash, dataExtents } from '../fixtures/volumes/manifest.ts';

let rig: E2ERig;
const DIND = DEBIAN_IMAGE_TAGS.dind;
// 4 MiB of random bytes plus a sparse file with data at both ends; their sha256 must come back.
const WRITE_DATA = [
  'head -c 4194304 /dev/urandom > /var/lib/docker/blob',
  'truncate -s 64M /var/lib/docker/sparse && printf start | dd of=/var/lib/docker/sparse conv=notrunc 2>/dev/null',
  'printf end | dd of=/var/lib/docker/sparse bs=1 seek=67108861 conv=notrunc 2>/dev/null',
  'mkdir -p /var/lib/docker/deep/a/b && echo deep > /var/lib/docker/deep/a/b/c && ln /var/lib/docker/deep/a/b/c /var/lib/docker/deep/hardlink',
  'chown 1234:5678 /var/lib/docker/deep/a/b/c',
].join(' && ');
const SUMS = 'cd /var/lib/docker && sha256sum blob sparse deep/a/b/c deep/hardlink && stat -c "%n %u:%g %h" deep/a/b/c';

before(async () => {
  // The kernel-log check (in the rig) covers the inner dockerd's overlays on the store volume:
  // the store lives beside the container's layer while it runs (issue 25).
  rig = await startE2ERig('e2e-volumes');
  await ensureDebianImage(rig.d, 'dind');
});

after(async () => {
  await rig.dispose();
});

async function exec(id: string, args: string[]) {
  return rig.docker(['exec', id, ...args], { reject: false });
}

async function sh(id: string, script: string): Promise<string> {
  const r = await exec(id, ['sh', '-c', script]);
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

async function waitForInnerDocker(id: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if ((await exec(id, ['docker', 'info'])).exitCode === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.fail(`inner dockerd of ${id} did not answer within 60 s`);
}

/** A running dind container with an inner image `inner:kept` and the test data written. */
async function dindWithData(name: string, extra: string[] = []): Promise<{ id: string; sums: string }> {
  const id = (await rig.run(['-d', '--name', name, ...extra, DIND])).stdout.trim();
  await waitForInnerDocker(id);
  await sh(id, 'mkdir -p /tmp/bb/bin && cp /bin/busybox /tmp/bb/bin/ && ln -s busybox /tmp/bb/bin/echo && ln -s busybox /tmp/bb/bin/cat && tar -C /tmp/bb -c . | docker import - inner:kept');
  // A layer on top that deletes a file: the inner overlay's whiteout must survive too.
  await sh(id, 'docker run --name wh-maker inner:kept /bin/busybox rm /bin/cat && docker commit wh-maker inner:whiteout >/dev/null && docker rm wh-maker >/dev/null');
  await sh(id, WRITE_DATA);
  return { id, sums: await sh(id, SUMS) };
}

const SUMMED = ['blob', 'sparse', 'deep/a/b/c', 'deep/hardlink'];

/** sha256 by file name, from `sha256sum` lines as SUMS prints them. */
function sumsByName(out: string): Record<string, string> {
  const byName: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{64})\s+(\S+)$/.exec(line);
    if (m) byName[m[2]!] = m[1]!;
  }
  return byName;
}

/** The same sums of the files as the host sees them under dir. */
function hostSums(dir: string): Record<string, string> {
  return Object.fromEntries(SUMMED.map((n) => [n, contentHash(path.join(dir, n))]));
}

async function upperOf(name: string): Promise<string> {
  return (await rig.docker(['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', name])).stdout.trim();
}

const volumesDir = () => path.join(rig.mgr.stateDir, 'volumes');

async function waitUntilVolumesGone(id: string): Promise<void> {
  for (let i = 0; i < 100 && existsSync(path.join(volumesDir(), id)); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(path.join(volumesDir(), id)), false, 'store volume dir removed');
}

/** The manager's sync-out log lines for a container. */
function syncOuts(id: string): Array<{ volumes: Array<{ mode: string; entries: number; ms: number }> }> {
  return rig.mgr.log().split('\n')
    .filter((l) => l.includes(id) && l.includes('synced store volumes out'))
    .map((l) => JSON.parse(l) as { volumes: Array<{ mode: string; entries: number; ms: number }> });
}

async function innerStillWorks(id: string): Promise<void> {
  const kept = await exec(id, ['docker', 'run', '--rm', 'inner:kept', 'echo', 'kept']);
  assert.equal(kept.stdout.trim(), 'kept', kept.stderr);
  const wh = await exec(id, ['docker', 'run', '--rm', 'inner:whiteout', '/bin/busybox', 'ls', '/bin']);
  assert.equal(wh.exitCode, 0, wh.stderr);
  assert.deepEqual(wh.stdout.split(/\s+/).filter((x) => x !== '').sort(), ['busybox', 'echo'], 'the inner whiteout still hides /bin/cat');
}

test('inner data lives in the layer with host-root ownership and survives stop and start byte for byte', async () => {
  const name = 'vol-keep';
  const { id, sums } = await dindWithData(name);
  try {
    const fsType = await sh(id, 'stat -f -c %T /var/lib/docker');
    assert.equal(fsType.trim(), 'ext2/ext3', 'not overlayfs');
    await rig.docker(['stop', name]);
    const outs = syncOuts(id);
    assert.equal(outs.length, 1);
    assert.equal(outs[0]?.volumes[0]?.mode, 'in-layer');
    const upper = await upperOf(name);
    const blob = path.join(upper, 'var/lib/docker/blob');
    assert.equal(statSync(blob).uid, 0, 'owned by host root in the layer');
    assert.equal(statSync(blob).size, 4194304);
    assert.equal(statSync(path.join(upper, 'var/lib/docker/deep/a/b/c')).uid, 1234);
    assert.ok(existsSync(path.join(upper, 'var/lib/docker/image')), 'inner images in the layer');
    assert.deepEqual(hostSums(path.join(upper, 'var/lib/docker')), sumsByName(sums), 'the layer holds the inner data byte for byte');

    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    assert.equal(await sh(id, SUMS), sums);
    await innerStillWorks(id);
    await rig.docker(['stop', name]);
    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    assert.equal(await sh(id, SUMS), sums, 'second stop/start');
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  await waitUntilVolumesGone(id);
});

/** The store directories sysrunc keeps beside a container's upper dir (in the engine's layer dir). */
function besideDirs(upper: string): string[] {
  const layerDir = path.dirname(upper);
  return existsSync(layerDir) ? readdirSync(layerDir).filter((n) => n.startsWith('sysrunc-store.')).map((n) => path.join(layerDir, n)) : [];
}

// Issue 25: an inner overlay below the outer overlay's upper dir draws the kernel's warning (the
// rig fails on it); so while the container runs, its store is beside the layer, not in it.
test('while the container runs its store is beside the upper dir, in the engine\'s layer dir; stopped, it is back in the layer', async () => {
  const name = 'vol-beside';
  const id = (await rig.run(['-d', '--name', name, DIND])).stdout.trim();
  try {
    await waitForInnerDocker(id);
    await sh(id, 'echo running > /var/lib/docker/marker');
    const upper = await upperOf(name);
    // runc makes the bind mount's destination there: an empty directory, set aside at the stop.
    assert.deepEqual(readdirSync(path.join(upper, 'var/lib/docker')), [], 'no inner data in the layer while running');
    const beside = besideDirs(upper);
    assert.equal(beside.length, 1, `one store beside ${upper}`);
    assert.ok(existsSync(path.join(beside[0]!, 'marker')) && existsSync(path.join(beside[0]!, 'image')), 'the inner data is there');
    await rig.docker(['stop', name]);
    assert.deepEqual(besideDirs(upper), []);
    assert.equal(statSync(path.join(upper, 'var/lib/docker/marker')).uid, 0, 'in the layer, owned by host root');
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  await waitUntilVolumesGone(id);
});

test('docker cp, docker diff and docker commit of a stopped container see the inner data owned by host root', async () => {
  const name = 'vol-commit';
  const { id, sums } = await dindWithData(name);
  try {
    await rig.docker(['stop', name]);
    // docker cp's tar stream as it comes from dockerd (the CLI would re-own what it extracts).
    const cp = spawnSync('sh', ['-c', `"$CLI" -H "$HOST" cp ${name}:/var/lib/docker/deep - | tar --numeric-owner -tvf -`], {
      env: { ...process.env, CLI: rig.d.cli, HOST: rig.d.host, DOCKER_CONFIG: '/nonexistent' }, encoding: 'utf8',
    });
    assert.equal(cp.status, 0, cp.stderr);
    const owners = new Map(cp.stdout.trim().split('\n').map((l) => {
      const f = l.split(/\s+/);
      return [f[5] ?? '', f[1] ?? ''] as const;
    }));
    assert.equal(owners.get('deep/'), '0/0', cp.stdout);
    assert.equal(owners.get('deep/a/b/c'), '1234/5678', cp.stdout);
    const diff = (await rig.docker(['diff', name])).stdout.split('\n');
    assert.ok(diff.includes('A /var/lib/docker/blob'), diff.slice(0, 20).join('\n'));
    assert.ok(diff.some((l) => l.startsWith('A /var/lib/docker/image')), 'inner images in docker diff');

    await rig.docker(['commit', name, 'vol-committed:local']);
    // Plain runc, no user namespace: ownership as stored in the image.
    const stored = await rig.docker(['run', '--rm', '--runtime=runc', '--entrypoint', 'sh', 'vol-committed:local', '-c',
      'stat -c "%u:%g" /var/lib/docker/blob /var/lib/docker/image /var/lib/docker/deep/a/b/c && sha256sum /var/lib/docker/blob']);
    assert.equal(stored.exitCode, 0, stored.stderr);
    const lines = stored.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['0:0', '0:0', '1234:5678']);
    assert.equal(lines[3]?.split(' ')[0], sums.split('\n')[0]?.split(' ')[0], 'blob content in the committed image');

    // The committed image as a new system container, in each volume mode (copy mode: the sync-in
    // copies the image's inner data into the volume): its inner images are there, byte for byte, and run.
    for (const [copyName, extra] of [['vol-from-commit', []], ['vol-from-commit-copy', ['--runtime=sysrunc-clone']]] as const) {
      const copy = (await rig.run(['-d', '--name', copyName, ...extra, 'vol-committed:local'])).stdout.trim();
      try {
        await waitForInnerDocker(copy);
        assert.equal(await sh(copy, SUMS), sums, copyName);
        await innerStillWorks(copy);
      } finally {
        await rig.docker(['rm', '-f', copyName], { reject: false });
      }
    }
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
    await rig.docker(['rmi', '-f', 'vol-committed:local'], { reject: false });
  }
  await waitUntilVolumesGone(id);
});

for (const fault of ['layer-sync-out:detached', 'layer-sync-out:before-sidecar']) {
  test(`a manager killed -9 during a stop (${fault}) leaves the data whole; the next start finds it and docker rm removes it`, async () => {
    const name = `vol-kill-${fault.split(':')[1]}`;
    const { id, sums } = await dindWithData(name);
    try {
      rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: fault });
      await rig.mgr.restart();
      await rig.docker(['stop', name], { reject: false });
      assert.match(rig.mgr.log(), new RegExp(`SYSRUNC_TEST_FAULT: killing pid \\d+ at ${fault}`));
      rig.mgr.setEnv({});
      await rig.mgr.restart();
      const upper = await upperOf(name);
      assert.equal(statSync(path.join(upper, 'var/lib/docker/blob')).size, 4194304);
      assert.ok(existsSync(path.join(upper, 'var/lib/.docker.sysrunc-meta.json')), 'the restarted manager finished the stop (sidecar written)');
      await rig.docker(['start', name]);
      await waitForInnerDocker(id);
      assert.equal(await sh(id, SUMS), sums);
      await innerStillWorks(id);
      await rig.docker(['stop', name]);
      await rig.docker(['rm', name]);
      assert.equal(existsSync(upper), false, 'the layer, and the data with it, is gone');
    } finally {
      rig.mgr.setEnv({});
      await rig.docker(['rm', '-f', name], { reject: false });
    }
    await waitUntilVolumesGone(id);
  });
}

// The moves beside the layer and back: a manager killed -9 in the middle of one (a stop's move in,
// a start's move out) leaves the data whole at one place; the next start and stop find it.
for (const [fault, during] of [
  ['layer-move-in:before-rename', 'stop'], ['layer-move-in:renamed', 'stop'],
  ['layer-move-out:before-rename', 'start'], ['layer-move-out:renamed', 'start'],
] as const) {
  test(`a manager killed -9 at ${fault} (docker ${during}) loses and duplicates nothing; docker rm removes it`, async () => {
    const name = `vol-kill-${fault.replace(':', '-')}`;
    const { id, sums } = await dindWithData(name);
    try {
      const upper = await upperOf(name);
      if (during === 'start') await rig.docker(['stop', name]);
      rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: fault });
      await rig.mgr.restart();
      await rig.docker([during, name], { reject: false });
      assert.match(rig.mgr.log(), new RegExp(`SYSRUNC_TEST_FAULT: killing pid \\d+ at ${fault}`));
      const places = [existsSync(path.join(upper, 'var/lib/docker')), besideDirs(upper).length === 1];
      assert.equal(places.filter((p) => p).length, 1, `the data at exactly one place (layer, beside): ${places.join(', ')}`);
      rig.mgr.setEnv({});
      await rig.mgr.restart();
      if (during === 'start') await rig.docker(['stop', name], { reject: false }); // the failed start's leftovers
      await rig.docker(['start', name]);
      await waitForInnerDocker(id);
      assert.equal(await sh(id, SUMS), sums);
      await innerStillWorks(id);
      await rig.docker(['stop', name]);
      assert.deepEqual(besideDirs(upper), []);
      assert.deepEqual(hostSums(path.join(upper, 'var/lib/docker')), sumsByName(sums), 'back in the layer byte for byte');
      await rig.docker(['rm', name]);
      assert.equal(existsSync(path.dirname(upper)), false, 'the layer, and the data with it, is gone');
    } finally {
      rig.mgr.setEnv({});
      await rig.docker(['rm', '-f', name], { reject: false });
    }
    await waitUntilVolumesGone(id);
  });
}

test('docker rm of a container whose store is beside the layer (its manager killed -9 while it ran) removes the store with the layer', async () => {
  const name = 'vol-rm-beside';
  const id = (await rig.run(['-d', '--name', name, DIND])).stdout.trim();
  try {
    await waitForInnerDocker(id);
    const upper = await upperOf(name);
    assert.equal(besideDirs(upper).length, 1);
    await rig.mgr.kill9();
    await rig.docker(['rm', '-f', name]);
    assert.equal(existsSync(path.dirname(upper)), false, 'the engine removed its layer dir, the store beside the upper dir with it');
    await rig.mgr.restart();
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  await waitUntilVolumesGone(id);
});

test('a --rm container skips the sync-out and leaves no store volume behind', async () => {
  const id = (await rig.run(['-d', '--rm', '--entrypoint', 'sh', DIND, '-c', 'echo x > /var/lib/docker/x && sleep 2'])).stdout.trim();
  assert.match(rig.mgr.log().split('\n').find((l) => l.includes(id) && l.includes('registered container')) ?? '', /in-layer/);
  for (let i = 0; i < 100 && (await rig.docker(['ps', '-aq', '--no-trunc'])).stdout.includes(id); i++) await new Promise((r) => setTimeout(r, 200));
  assert.equal(syncOuts(id).length, 0, 'no sync-out for --rm');
  await waitUntilVolumesGone(id);
});

test('with clone ownership the store volume is copied at stop (copy mode), and a kill -9 before the swap loses nothing', async () => {
  const name = 'vol-copy';
  const { id, sums } = await dindWithData(name, ['--runtime=sysrunc-clone']);
  try {
    assert.deepEqual(readdirSync(path.join(volumesDir(), id)).length, 1);
    rig.mgr.setEnv({ SYSRUNC_TEST_FAULT: 'copy-sync-out:before-swap' });
    await rig.mgr.restart();
    await rig.docker(['stop', name], { reject: false });
    assert.match(rig.mgr.log(), /killing pid \d+ at copy-sync-out:before-swap/);
    rig.mgr.setEnv({});
    await rig.mgr.restart();
    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    assert.equal(await sh(id, SUMS), sums);
    const volume = path.join(volumesDir(), id, readdirSync(path.join(volumesDir(), id))[0] ?? '');
    const sparseExtents = dataExtents(path.join(volume, 'sparse'), 64 << 20);
    await rig.docker(['stop', name]);
    const outs = syncOuts(id);
    assert.equal(outs.at(-1)?.volumes[0]?.mode, 'copy');
    const upper = await upperOf(name);
    assert.equal(statSync(path.join(upper, 'var/lib/docker/blob')).uid, 0, 'synced out with host-root ownership');
    // What the stop copied into the layer (what docker commit and docker cp read), byte for byte and
    // with the sparse file's holes; the restarted container reads the volume, not this copy.
    assert.deepEqual(hostSums(path.join(upper, 'var/lib/docker')), sumsByName(sums));
    assert.equal(dataExtents(path.join(upper, 'var/lib/docker/sparse'), 64 << 20), sparseExtents);
    assert.equal(sparseExtents.split(' ').length, 2, `data at both ends, a hole between: ${sparseExtents}`);
    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    assert.equal(await sh(id, SUMS), sums);
    await innerStillWorks(id);
  } finally {
    rig.mgr.setEnv({});
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  await waitUntilVolumesGone(id);
});

// Clone ownership shifts the container's upper dir at start and reverts it at stop; the synced-out
// copy of a store volume there must be left alone, or every entry's ctime moves and the next
// sync-out trusts none of them.
test('with clone ownership a later stop copies only what changed', async () => {
  const name = 'vol-copy-again';
  const id = (await rig.run(['-d', '--name', name, '--runtime=sysrunc-clone', DIND])).stdout.trim();
  try {
    await waitForInnerDocker(id);
    await sh(id, WRITE_DATA);
    await rig.docker(['stop', name]);
    await rig.docker(['start', name]);
    await waitForInnerDocker(id);
    await rig.docker(['stop', name]);
    const outs = syncOuts(id) as Array<{ volumes: Array<{ entries: number; kept?: number }> }>;
    assert.equal(outs.length, 2);
    const second = outs[1]?.volumes[0];
    assert.ok((second?.kept ?? 0) > (second?.entries ?? 0) / 2, `kept ${second?.kept} of ${second?.entries} entries`);
  } finally {
    await rig.docker(['rm', '-f', name], { reject: false });
  }
  await waitUntilVolumesGone(id);
});
