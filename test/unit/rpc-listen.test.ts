// A daemon's start-up on its socket (src/rpc/listen.ts): a socket a live daemon answers on is not
// taken, one left by a daemon killed -9 is replaced, and the socket is root's only (0600).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listenOnSocket, socketAnswers, SocketTakenError } from '../../src/rpc/listen.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-listen-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a socket a live daemon answers on is not taken: the error names the daemon and the socket', async () => {
  const socket = path.join(dir, 'live.sock');
  const live = createServer();
  await new Promise<void>((resolve) => live.listen(socket, resolve));
  const second = createServer();
  try {
    await assert.rejects(listenOnSocket(second, socket, 'sysrunc-depotd'), (err: unknown) => err instanceof SocketTakenError && err.message === `another sysrunc-depotd is listening on ${socket}`);
    assert.equal(await socketAnswers(socket), true);
  } finally {
    live.close();
    second.close();
  }
});

test('a socket left by a daemon killed -9 is replaced, and the new one is mode 0600', async () => {
  const socket = path.join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(socket));
  assert.equal(await socketAnswers(socket), false);
  const server = createServer();
  try {
    await listenOnSocket(server, socket, 'sysrunc-tenantd');
    assert.equal(await socketAnswers(socket), true);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
  } finally {
    server.close();
  }
});
