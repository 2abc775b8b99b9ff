// Issue 19, through Docker: a container whose `docker run` drops capabilities keeps exactly what it
// asked for under sysrunc, as under runc, and `docker exec` into it does not get them back; one
// that only adds to Docker's default keeps the system container's grant.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startE2ERig, type E2ERig } from './helpers.ts';

let rig: E2ERig;

before(async () => {
  rig = await startE2ERig('e2e-cap-drop');
});
after(async () => {
  await rig?.dispose();
});

/** CapEff and CapBnd of the container's init, as /proc/1/status shows them. */
async function initCaps(runtime: string, flags: readonly string[]): Promise<string> {
  const r = await rig.docker(['run', `--runtime=${runtime}`, '--rm', ...flags, 'bb:local', 'grep', '-E', '^Cap(Eff|Bnd)', '/proc/1/status']);
  return r.stdout.trim();
}

const CAP_NET_RAW = 1n << 13n;
const CAP_SYS_ADMIN = 1n << 21n;
const effective = (caps: string): bigint => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(caps)?.[1] ?? 'x'}`);

test('docker run --cap-drop ALL: no capability under sysrunc, as under runc', async () => {
  const plain = await initCaps('runc', ['--cap-drop', 'ALL']);
  assert.match(plain, /CapEff:\s*0+\n/);
  assert.equal(await initCaps('sysrunc', ['--cap-drop', 'ALL']), plain);
});

test('docker run --cap-drop NET_RAW: the same capabilities under sysrunc as under runc, without NET_RAW', async () => {
  const plain = await initCaps('runc', ['--cap-drop', 'NET_RAW']);
  const sys = await initCaps('sysrunc', ['--cap-drop', 'NET_RAW']);
  assert.equal(sys, plain);
  assert.equal(effective(sys) & CAP_NET_RAW, 0n);
});

test('docker exec into a container run with --cap-drop NET_RAW does not get NET_RAW back', async () => {
  const id = (await rig.run(['-d', '--cap-drop', 'NET_RAW', 'bb:local', 'sleep', '1000'])).stdout.trim();
  try {
    const r = await rig.docker(['exec', id, 'grep', '^CapEff', '/proc/self/status']);
    assert.equal(effective(r.stdout) & CAP_NET_RAW, 0n, r.stdout);
    assert.equal(effective(r.stdout) & CAP_SYS_ADMIN, 0n, r.stdout);
  } finally {
    await rig.docker(['rm', '-f', id]);
  }
});

test('docker run --cap-add NET_ADMIN keeps the system container\'s grant (CAP_SYS_ADMIN) under sysrunc', async () => {
  assert.equal(effective(await initCaps('sysrunc', ['--cap-add', 'NET_ADMIN'])) & CAP_SYS_ADMIN, CAP_SYS_ADMIN);
});
