// The one RPC server (src/rpc/server.ts) as the three daemons use it: an unknown method is a
// one-line error under the request's seq; a non-root peer is refused the same way by all three; a
// request that must wait for work under way (the manager's release) waits outside the queue, as its
// handler table says, and only that method waits (not any request whose line mentions it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createManagerServer } from '../../src/manager/server.ts';
import type { ManagerService } from '../../src/manager/service.ts';
import { createDepotServer } from '../../src/depot/server.ts';
import type { DepotRuntime } from '../../src/depot/runtime.ts';
import { createTenantServer } from '../../src/tenants/server.ts';
import type { TenantRuntime } from '../../src/tenants/runtime.ts';
import { requestAs } from '../fixtures/host/socket-client.ts';
import { converse } from '../helpers/line-server.ts';

/** A bound against a hang (the failure these tests guard against), not a performance assertion. */
const HANG_GUARD = { timeout: 15_000 };
const silent = pino({ level: 'silent' });

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-rpc-server-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
async function listen(server: Server): Promise<string> {
  const socket = path.join(dir, `s${++serial}.sock`);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return socket;
}

/** A manager service whose engineSettled(id) waits until released(id) is called. */
function managerStub(): { service: ManagerService; release(id: string): void; waitedFor: string[] } {
  const gates = new Map<string, () => void>();
  const waitedFor: string[] = [];
  const stub = {
    ping: () => ({ version: 'test', apiVersion: 1, pid: 1 }),
    engineReleased: () => undefined,
    engineSettled: (id: string) => {
      waitedFor.push(id);
      return new Promise<void>((resolve) => gates.set(id, resolve));
    },
    allSettled: async () => undefined,
    release: async () => ({ found: false }),
    register: async () => {
      throw new Error('not in this test');
    },
  };
  return { service: stub as unknown as ManagerService, release: (id) => gates.get(id)?.(), waitedFor };
}

test('an unknown method is answered with a one-line invalid-request error under the request\'s seq', HANG_GUARD, async () => {
  const server = createManagerServer(managerStub().service, silent);
  try {
    const [answer] = await converse(await listen(server), ['{"v":1,"seq":41,"method":"launch\\nrockets","params":{}}'], 1);
    assert.deepEqual(JSON.parse(answer!), { seq: 41, error: { code: 'invalid-request', message: 'unknown method "launch\\nrockets"' } });
    assert.doesNotMatch((JSON.parse(answer!) as { error: { message: string } }).error.message, /\n/);
  } finally {
    server.close();
  }
});

test('a release waiting for one under way waits outside the queue: a later request is answered first', HANG_GUARD, async () => {
  const stub = managerStub();
  const server = createManagerServer(stub.service, silent);
  try {
    const release = '{"v":1,"seq":1,"method":"release","params":{"id":"web-1","runtimeRoot":"/run/runc"}}';
    const ping = '{"v":1,"seq":2,"method":"ping","params":{}}';
    const answers = await converse(await listen(server), [release, ping], 2, (answer) => {
      if ((JSON.parse(answer) as { seq: number }).seq === 2) stub.release('web-1');
    });
    assert.deepEqual(answers.map((a) => (JSON.parse(a) as { seq: number }).seq), [2, 1]);
    assert.deepEqual(stub.waitedFor, ['web-1']);
  } finally {
    server.close();
  }
});

test('a request that only mentions release in its params does not wait for a release', HANG_GUARD, async () => {
  const stub = managerStub();
  const server = createManagerServer(stub.service, silent);
  try {
    const register = '{"v":1,"seq":3,"method":"register","params":{"id":"release","runtimeRoot":"/run/runc","bundle":"/b","shimPid":1,"shimStartTime":"1","userns":{"from":"allocate"},"note":"sweep"}}';
    const [answer] = await converse(await listen(server), [register], 1);
    assert.equal((JSON.parse(answer!) as { seq: number }).seq, 3);
    assert.deepEqual(stub.waitedFor, []);
  } finally {
    server.close();
  }
});

test('the manager, the depot and the tenant service refuse a non-root peer alike: its request\'s seq, invalid-request, the daemon named', HANG_GUARD, async () => {
  const servers: [string, Server][] = [
    ['sysrunc-mgr', createManagerServer(managerStub().service, silent)],
    ['sysrunc-depotd', createDepotServer({} as DepotRuntime, silent)],
    ['sysrunc-tenantd', createTenantServer({} as TenantRuntime, '/run/containerd/containerd.sock', silent)],
  ];
  try {
    for (const [daemon, server] of servers) {
      const socket = await listen(server);
      chmodSync(socket, 0o666);
      const run = await requestAs(socket, '{"v":1,"seq":9,"method":"ping","params":{}}', { uid: 65534, gid: 65534 });
      assert.equal(run.closed, true, daemon);
      const reply = JSON.parse(run.reply) as { seq: number; error?: { code: string; message: string } };
      assert.equal(reply.seq, 9, daemon);
      assert.equal(reply.error?.code, 'invalid-request', daemon);
      assert.match(reply.error?.message ?? '', new RegExp(`^peer uid 65534 \\(pid \\d+\\): only root may use ${daemon}$`));
    }
  } finally {
    for (const [, server] of servers) server.close();
  }
});
