// The depot and tenant clients never drop an answer silently: an answer whose envelope or result
// fails the API's schema, a connection refused with seq -1, an attach event that cannot be read,
// each ends the call with an error naming what was wrong (dropped, the call would wait forever).
// The service is a small unix-socket server here that answers each request line with a fixed line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DepotClient } from '../../src/depot-api/client.ts';
import { DepotError } from '../../src/depot-api/v1.ts';
import { TenantsClient } from '../../src/tenants-api/client.ts';
import { TenantError } from '../../src/tenants-api/v1.ts';

/** A bound against a hang (the failure these tests guard against), not a performance assertion. */
const HANG_GUARD = { timeout: 10_000 };

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-rpc-answers-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
/** A server answering every request line with `answer(seq)`'s lines; `greeting` is sent on connect. */
async function serve(answer: (seq: number) => readonly unknown[], greeting: readonly unknown[] = []): Promise<{ socket: string; server: Server }> {
  const socket = path.join(dir, `s${++serial}.sock`);
  const server = createServer((conn) => {
    for (const line of greeting) conn.write(`${JSON.stringify(line)}\n`);
    let buffer = '';
    conn.on('data', (chunk) => {
      buffer += chunk.toString();
      let nl;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const { seq } = JSON.parse(buffer.slice(0, nl)) as { seq: number };
        buffer = buffer.slice(nl + 1);
        for (const line of answer(seq)) conn.write(`${JSON.stringify(line)}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, server };
}

async function withServer(answer: (seq: number) => readonly unknown[], fn: (socket: string) => Promise<void>, greeting: readonly unknown[] = []): Promise<void> {
  const { socket, server } = await serve(answer, greeting);
  try {
    await fn(socket);
  } finally {
    server.close();
  }
}

test('depot client: an answer whose envelope is not the API\'s reply ends the call with an error', HANG_GUARD, async () => {
  await withServer((seq) => [{ seq, bogus: true }], async (socket) => {
    const c = await DepotClient.connect(socket);
    try {
      await assert.rejects(c.call('ping', {}), /depot daemon at .*: an answer that is not the API's reply/);
    } finally {
      c.close();
    }
  });
});

test('depot client: a connection the daemon refuses with seq -1 ends the call with the daemon\'s error', HANG_GUARD, async () => {
  await withServer(() => [], async (socket) => {
    const c = await DepotClient.connect(socket);
    try {
      await assert.rejects(c.call('ping', {}), (err: unknown) => err instanceof DepotError && err.message === 'only root may use the depot');
    } finally {
      c.close();
    }
  }, [{ seq: -1, error: { code: 'invalid-request', message: 'only root may use the depot' } }]);
});

test('depot client: an attach event that cannot be read ends the attach with an error', HANG_GUARD, async () => {
  await withServer((seq) => [{ seq, event: { stream: 'nonsense' } }], async (socket) => {
    const c = await DepotClient.connect(socket);
    try {
      await assert.rejects(c.attach({ container: 'c', process: 'p' }, () => undefined), /attach event: malformed answer/);
    } finally {
      c.close();
    }
  });
});

test('depot client: a result that fails the method\'s schema ends the call with an error', HANG_GUARD, async () => {
  await withServer((seq) => [{ seq, result: { containers: 'not a list' } }], async (socket) => {
    const c = await DepotClient.connect(socket);
    try {
      await assert.rejects(c.call('list', {}), /list: malformed answer/);
    } finally {
      c.close();
    }
  });
});

test('tenant client: an answer whose envelope is not the API\'s reply ends the call with an error', HANG_GUARD, async () => {
  await withServer((seq) => [{ seq: String(seq), result: {} }], async (socket) => {
    const c = await TenantsClient.connect(socket);
    try {
      await assert.rejects(c.call('ping', {}), /tenant service at .*: an answer that is not the API's reply/);
    } finally {
      c.close();
    }
  });
});

test('tenant client: a connection the service refuses with seq -1 ends the call with the service\'s error', HANG_GUARD, async () => {
  await withServer(() => [], async (socket) => {
    const c = await TenantsClient.connect(socket);
    try {
      await assert.rejects(c.call('ping', {}), (err: unknown) => err instanceof TenantError && err.message === 'only root may use the tenant service');
    } finally {
      c.close();
    }
  }, [{ seq: -1, error: { code: 'invalid-request', message: 'only root may use the tenant service' } }]);
});
