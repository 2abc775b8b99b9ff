// The one RPC client (src/rpc/client.ts), through the manager's API: an answer that fails its
// schema is an error naming the method, a call with no answer times out, a call whose connection
// dies unanswered is resent only when its method is idempotent, and a seq -1 error is surfaced.
// The daemon is a small unix-socket stand-in (test/helpers/line-server.ts).
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLostError, RpcClient } from '../../src/rpc/client.ts';
import { MANAGER_API, type ErrorCode } from '../../src/manager-api/v1.ts';
import { ManagerError } from '../../src/manager-client/reply.ts';
import { RESENDABLE } from '../../src/manager-client/call.ts';
import { lineServer, writeLine, type LineServer } from '../helpers/line-server.ts';

/** A bound against a hang (the failure these tests guard against), not a performance assertion. */
const HANG_GUARD = { timeout: 15_000 };
const PING = { version: 'test', apiVersion: 1, pid: 1 };
const REGISTER = { id: 'c1', runtimeRoot: '/run/runc', bundle: '/b', shimPid: 1, shimStartTime: '1', userns: { from: 'allocate' as const } };

let servers: LineServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.close();
  servers = [];
});

async function serve(answer: Parameters<typeof lineServer>[0]): Promise<LineServer> {
  const s = await lineServer(answer);
  servers.push(s);
  return s;
}

function connect(socket: string, callTimeoutMs = 120_000): Promise<RpcClient<typeof MANAGER_API.methods>> {
  return RpcClient.connect(socket, MANAGER_API, { waitMs: 2_000, callTimeoutMs, errorFor: (code, message) => new ManagerError(code as ErrorCode, message) });
}

test('a result that fails the method\'s reply schema ends the call with an error naming the method', HANG_GUARD, async () => {
  const s = await serve(({ seq }, conn) => writeLine(conn, { seq, result: { containers: [{ id: 7 }] } }));
  const c = await connect(s.socket);
  try {
    await assert.rejects(c.call('list', {}), /^SysruncError: manager at \S+: list: malformed answer \(\/containers\/0\/id: /);
  } finally {
    c.close();
  }
});

test('a call with no answer ends with a timeout error naming the method', HANG_GUARD, async () => {
  const s = await serve(() => undefined);
  const c = await connect(s.socket, 300);
  try {
    await assert.rejects(c.call('status', {}), /^SysruncError: manager at \S+: status: no answer within 0\.3s$/);
  } finally {
    c.close();
  }
});

test('an idempotent call whose connection dies unanswered is resent to the next connection', HANG_GUARD, async () => {
  const s = await serve(({ seq }, conn, n) => (n === 1 ? conn.destroy() : writeLine(conn, { seq, result: { found: false } })));
  const c = await connect(s.socket);
  try {
    assert.deepEqual(await c.call('release', { id: 'c1', runtimeRoot: '/run/runc' }), { found: false });
    assert.equal(s.connections(), 2);
    assert.equal(s.requests.length, 2);
  } finally {
    c.close();
  }
});

test('a call that is not idempotent whose connection dies unanswered is not resent', HANG_GUARD, async () => {
  const s = await serve(({ seq }, conn, n) => (n === 1 ? conn.destroy() : writeLine(conn, { seq, result: {} })));
  const c = await connect(s.socket);
  try {
    await assert.rejects(c.call('register', REGISTER), (err: unknown) => err instanceof ConnectionLostError && /^manager at \S+ closed the connection$/.test(err.message));
    assert.equal(s.requests.length, 1);
  } finally {
    c.close();
  }
});

test('a seq -1 error answer ends the pending call with the daemon\'s error', HANG_GUARD, async () => {
  const s = await serve((_request, conn) => writeLine(conn, { seq: -1, error: { code: 'invalid-request', message: 'request does not match the v1 envelope' } }));
  const c = await connect(s.socket);
  try {
    await assert.rejects(c.call('ping', {}), (err: unknown) => err instanceof ManagerError && err.code === 'invalid-request' && err.message === 'request does not match the v1 envelope');
  } finally {
    c.close();
  }
});

test('an answer for the right seq with a valid result resolves the call with it', HANG_GUARD, async () => {
  const s = await serve(({ seq }, conn) => writeLine(conn, { seq, result: PING }));
  const c = await connect(s.socket);
  try {
    assert.deepEqual(await c.call('ping', {}), PING);
  } finally {
    c.close();
  }
});

test('the per-call binary\'s own path resends exactly the mutating methods the manager\'s table marks idempotent', () => {
  const readOnly = new Set(['ping', 'list', 'status', 'sweep']);
  // Sent by the C clients only, which resend by handing the call to the per-call binary (prepare, release).
  const notSentHere = new Set(['prepareCall', 'deleteCall']);
  const idempotent = Object.entries(MANAGER_API.methods).filter(([, spec]) => 'idempotent' in spec && spec.idempotent).map(([name]) => name);
  assert.deepEqual([...RESENDABLE].sort(), idempotent.filter((m) => !readOnly.has(m) && !notSentHere.has(m)).sort());
});
