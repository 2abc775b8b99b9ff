// A manager killed -9 can be replaced at once, even while its parent has not reaped it yet (a
// zombie still holds its pid, and the pid file names it): a zombie is not a live manager.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SYSRUNC_MGR } from '../helpers/manager.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';
import { procState, startUnreapedChild, waitForZombie, type UnreapedChild } from '../fixtures/proc/zombie.ts';

const base = mkdtempSync(path.join('/var/tmp', 'sysrunc-mgr-replace-'));
const stateDir = path.join(base, 'state');
const runDir = '/run/sysrunc-test/mgr-e2e-mgr-replace';
const socket = path.join(runDir, 'mgr.sock');
const logPath = path.join(base, 'mgr.log');
const args = [
  '--socket', socket, '--state-dir', stateDir, '--run-dir', runDir,
  '--subuid-file', path.join(base, 'subuid'), '--subgid-file', path.join(base, 'subgid'), '--log-level', 'debug',
  // No lxcfs: it outlives its manager on purpose (containers read through it), and this test
  // starts bare managers outside the helper that would stop it.
  '--lxcfs', 'off',
];
const held: UnreapedChild[] = [];

before(() => {
  mkdirSync(runDir, { recursive: true });
  for (const f of ['subuid', 'subgid']) writeFileSync(path.join(base, f), '');
});
after(async () => {
  for (const h of held) await h.dispose();
  rmSync(base, { recursive: true, force: true });
  rmSync(socket, { force: true });
  try {
    rmdirSync(runDir);
  } catch {
    // not empty: left for inspection
  }
});

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A manager whose parent never reaps it (so a kill -9 leaves a zombie); resolves once it answers. */
async function startUnreapedManager(): Promise<UnreapedChild> {
  const mgr = await startUnreapedChild(`exec ${[SYSRUNC_MGR, ...args].map(quote).join(' ')} 2>>${quote(logPath)}`);
  held.push(mgr);
  await waitForAnswer();
  return mgr;
}

async function waitForAnswer(): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      const client = await ManagerClient.connect(socket);
      try {
        await client.call('ping', {});
        return;
      } finally {
        client.close();
      }
    } catch (err) {
      if (Date.now() > until) throw new Error(`sysrunc-mgr did not answer: ${String(err)}\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('a manager killed -9 and not yet reaped by its parent is replaced at once by a new one', async () => {
  const first = await startUnreapedManager();
  assert.equal(readFileSync(path.join(stateDir, 'mgr.pid'), 'utf8').split(' ')[0], String(first.pid));
  process.kill(first.pid, 'SIGKILL');
  await waitForZombie(first.pid);

  // Started while the old one is a zombie, with the same state dir and socket.
  const replacement = await startUnreapedManager();
  assert.equal(procState(first.pid), 'Z', 'the old manager was still an unreaped zombie when the new one started');
  assert.equal(readFileSync(path.join(stateDir, 'mgr.pid'), 'utf8').split(' ')[0], String(replacement.pid));
  assert.doesNotMatch(readFileSync(logPath, 'utf8'), /another sysrunc-mgr/);
});
