// The depot keeps a bounded amount of each process's output on /run (tmpfs: memory): with
// --max-output-bytes N, a process that writes far more keeps at most N bytes on disk (the oldest
// dropped, rotated to one .1 file per stream), and attach still streams every byte that is kept,
// at stream offsets that carry on across rotations. Real runc, sysrunc and supervisors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { DepotClient } from '../../src/depot-api/client.ts';
import type { ProcessSpec } from '../../src/depot-api/v1.ts';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { sweepManager } from '../helpers/manager-state.ts';
import { ensureBusyboxRootfs } from '../rig/images.ts';
import { REPO_ROOT } from '../rig/paths.ts';
import { mountsUnder } from '../rig/proc.ts';

const TAG = `${process.pid.toString(36)}`;
const BASE = `/run/sysrunc-test/dcap-${TAG}`;
const SOCKET = path.join(BASE, 'depotd.sock');
const DEPOT = path.join(BASE, 'depot');
const RUNC_ROOT = path.join(BASE, 'runc');
const WORK = `/var/tmp/dcap-e2e-${TAG}`;
const BOX = `dcap-${TAG}`;
const CAP = 64 * 1024;

let mgr: TestManager;
let daemon: ChildProcess | undefined;

async function withClient<T>(fn: (c: DepotClient) => Promise<T>): Promise<T> {
  const c = await DepotClient.connect(SOCKET, 20_000);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

before(async () => {
  mkdirSync(WORK, { recursive: true });
  mgr = await startTestManager({ name: `dcap-${TAG}` });
  const log = openSync(path.join(WORK, 'depotd.log'), 'a');
  daemon = spawn(path.join(REPO_ROOT, 'bin', 'sysrunc-depotd'), ['--socket', SOCKET, '--depot', DEPOT, '--runc-root', RUNC_ROOT, '--max-output-bytes', String(CAP)], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...mgr.env },
  });
  closeSync(log);
  const rootfs = path.join(WORK, 'rootfs');
  cpSync(await ensureBusyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
  await withClient((c) => c.call('create', { id: BOX, rootfs }));
});

after(async () => {
  try {
    await withClient(async (c) => c.call('destroy', { id: BOX })).catch(() => undefined);
  } finally {
    const d = daemon;
    if (d !== undefined && d.exitCode === null) await new Promise<void>((resolve) => (d.once('exit', () => resolve()), d.kill('SIGKILL')));
    const left = spawnSync('runc', ['--root', RUNC_ROOT, 'list', '-q'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
    for (const id of left) spawnSync(path.join(REPO_ROOT, 'bin', 'sysrunc'), ['--root', RUNC_ROOT, 'delete', '--force', id], { env: { ...process.env, ...mgr.env } });
    await sweepManager(mgr.socket).catch(() => undefined);
    await mgr.dispose();
    if (mountsUnder([BASE, WORK, mgr.runDir]).length === 0) {
      for (const dir of [BASE, WORK, mgr.runDir]) rmSync(dir, { recursive: true, force: true });
    }
  }
});

/** Bytes of all output files of a process (stdout, stderr and their rotated .1 files). */
function outputBytesOnDisk(processId: string): number {
  const dir = path.join(DEPOT, BOX, 'processes', processId);
  return readdirSync(dir).filter((n) => /^std(out|err)(\.1)?$/.test(n)).reduce((sum, n) => sum + statSync(path.join(dir, n)).size, 0);
}

// 1 MiB on each stream, numbered lines, then a last line: far more than the cap.
const FLOOD = 'i=0; while [ $i -lt 16384 ]; do echo "line $i of the flood, padded to sixty-four bytes.........."; echo "err $i" >&2; i=$((i+1)); done; echo LAST-LINE';

test('a process writing far more than --max-output-bytes keeps at most that much on disk, the newest', async () => {
  const spec: ProcessSpec = { args: ['sh', '-c', FLOOD] };
  const { process: id } = await withClient((c) => c.call('exec', { container: BOX, spec }));
  assert.equal(await withClient(async (c) => (await c.call('wait', { container: BOX, process: id })).exitCode), 0);
  const kept = outputBytesOnDisk(id);
  assert.ok(kept <= CAP, `${kept} bytes of output on disk, more than the cap of ${CAP}`);
  assert.ok(kept >= CAP / 4, `only ${kept} bytes kept`);
  let stdout = '';
  let lastOffset = 0;
  const { exitCode } = await withClient((c) =>
    c.attach({ container: BOX, process: id }, (e) => {
      if (e.stream !== 'stdout') return;
      stdout += Buffer.from(e.data, 'base64').toString('utf8');
      lastOffset = e.offset;
    }),
  );
  assert.equal(exitCode, 0);
  assert.ok(stdout.endsWith('LAST-LINE\n'), 'the newest output is kept');
  assert.ok(!stdout.includes('line 0 of the flood'), 'the oldest output was dropped');
  let written = 'LAST-LINE\n'.length;
  for (let i = 0; i < 16384; i++) written += `line ${i} of the flood, padded to sixty-four bytes..........\n`.length;
  assert.equal(lastOffset, written, 'stream offsets count every byte the process wrote');
});
