// ManagerClient.connect waits, bounded, for a manager that is not listening yet (a restart).
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManagerClient, managerWaitMs } from '../../src/manager-client/client.ts';

const root = mkdtempSync(path.join(tmpdir(), 'sysrunc-client-'));
after(() => rmSync(root, { recursive: true, force: true }));
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  delete process.env['SYSRUNC_MGR_WAIT_MS'];
});

let n = 0;
const socketPath = () => path.join(root, `mgr-${++n}.sock`);

/** A manager stand-in that answers ping, listening on `socket` after `delayMs`. */
function listenLater(socket: string, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(() => {
      rmSync(socket, { force: true });
      const server = createServer((c) => {
        c.setEncoding('utf8');
        c.on('data', (line: string) => {
          const { seq } = JSON.parse(line) as { seq: number };
          c.write(`${JSON.stringify({ seq, result: { version: 'test', apiVersion: 1, pid: process.pid } })}\n`);
        });
      });
      servers.push(server);
      server.listen(socket, () => resolve());
    }, delayMs);
  });
}

/** A socket file nobody listens on (its listener was killed -9): connect gives ECONNREFUSED. */
async function staleSocket(socket: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(socket));
}

/** Connects (retrying while nobody listens) and asks the stand-in manager for its version. */
async function connectAndPing(socket: string): Promise<void> {
  const client = await ManagerClient.connect(socket);
  try {
    assert.equal((await client.call('ping', {})).version, 'test');
  } finally {
    client.close();
  }
}

test('connect reaches a manager that starts listening a second after the client began connecting', async () => {
  const socket = socketPath();
  const listening = listenLater(socket, 1000);
  await connectAndPing(socket);
  await listening;
});

test('connect reaches a manager that replaces a stale socket a second after the client began connecting', async () => {
  const socket = socketPath();
  await staleSocket(socket);
  const listening = listenLater(socket, 1000);
  await connectAndPing(socket);
  await listening;
});

test('connect to a manager that never listens fails after the bound with the one-line error', async () => {
  process.env['SYSRUNC_MGR_WAIT_MS'] = '1500';
  const socket = socketPath();
  const started = Date.now();
  await assert.rejects(ManagerClient.connect(socket), (err: Error) => {
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1400 && elapsed < 4000, `failed after ${elapsed} ms`);
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, /^sysrunc-mgr is not reachable at \S+ \(connect: ENOENT, still after waiting 1\.5s\); start it with "systemctl start sysrunc-mgr"/);
    return true;
  });
});

test('connect to a stale socket nobody replaces fails after the bound with the one-line error', async () => {
  process.env['SYSRUNC_MGR_WAIT_MS'] = '1000';
  const socket = socketPath();
  await staleSocket(socket);
  const started = Date.now();
  await assert.rejects(ManagerClient.connect(socket), (err: Error) => {
    assert.match(err.message, /^sysrunc-mgr is not reachable at \S+ \(connect: ECONNREFUSED, still after waiting 1\.0s\); start it with/);
    return true;
  });
  assert.ok(Date.now() - started >= 900);
});

test('the wait bound is 5 s unless SYSRUNC_MGR_WAIT_MS gives a whole number of ms', () => {
  assert.equal(managerWaitMs({}), 5000);
  assert.equal(managerWaitMs({ SYSRUNC_MGR_WAIT_MS: '250' }), 250);
  assert.equal(managerWaitMs({ SYSRUNC_MGR_WAIT_MS: '0' }), 0);
  assert.equal(managerWaitMs({ SYSRUNC_MGR_WAIT_MS: 'soon' }), 5000);
});
