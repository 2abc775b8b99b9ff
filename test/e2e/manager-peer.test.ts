// The manager's socket serves root only: it checks the peer's uid (SO_PEERCRED), not just the
// socket file's mode. Here the socket is made world-writable so that the peer check alone decides.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { startTestManager, type TestManager } from '../helpers/manager.ts';
import { requestAs } from '../fixtures/host/socket-client.ts';

let mgr: TestManager;
const PING = JSON.stringify({ v: 1, seq: 7, method: 'ping', params: {} });

before(async () => {
  mgr = await startTestManager({ name: 'e2e-mgr-peer' });
  chmodSync(mgr.socket, 0o666);
});
after(async () => mgr?.dispose());

test('a request from a non-root uid is answered with an invalid-request error and the connection closed', async () => {
  const run = await requestAs(mgr.socket, PING, { uid: 65534, gid: 65534 });
  assert.equal(run.closed, true);
  const reply = JSON.parse(run.reply) as { seq: number; error?: { code: string; message: string }; result?: unknown };
  assert.equal(reply.result, undefined);
  assert.equal(reply.seq, 7);
  assert.equal(reply.error?.code, 'invalid-request');
  assert.match(reply.error?.message ?? '', /^peer uid 65534 \(pid \d+\): only root may use sysrunc-mgr$/);
});

test('a refused non-root peer is logged by the manager with its uid', async () => {
  await requestAs(mgr.socket, PING, { uid: 65534, gid: 65534 });
  assert.match(mgr.log(), /refused a connection from a non-root peer/);
});

test('a request from root over the same socket is served', async () => {
  const run = await requestAs(mgr.socket, PING, { uid: 0, gid: 0 });
  const reply = JSON.parse(run.reply) as { seq: number; result?: { pid: number } };
  assert.equal(reply.seq, 7);
  assert.equal(reply.result?.pid, mgr.pid());
});
