// The tenant service's wire format stays what it was: a conversation recorded from its own server
// and client (test/fixtures/rpc/tenants-v1.json) is what this version's server answers and what
// this version's client sends and reads. The service runs its own handlers over a stand-in for
// containerd's answers (no daemon in a unit test): namespaces team-a, team-b and broken, no
// containers, team-b already there, and a containerd that refuses every container call in broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createTenantServer } from '../../src/tenants/server.ts';
import type { TenantRuntime } from '../../src/tenants/runtime.ts';
import { ContainerdCallError, GRPC_ALREADY_EXISTS, GRPC_NOT_FOUND, type ContainerdClient } from '../../src/tenants/containerd-client.ts';
import { TenantsClient } from '../../src/tenants-api/client.ts';
import { TenantError } from '../../src/tenants-api/v1.ts';
import { SYSRUNC_VERSION } from '../../src/common/version.ts';
import { assertAnswersAsRecorded, readRecording, recordedDaemon } from '../helpers/wire-recording.ts';

/** A bound against a hang, not a performance assertion. */
const HANG_GUARD = { timeout: 15_000 };
const recording = readRecording('tenants-v1.json');
const CONTAINERD = '/run/containerd/containerd.sock';
/** gRPC's UNAVAILABLE: containerd not answering. */
const GRPC_UNAVAILABLE = 14;

/** containerd's answers as the recording had them. */
async function recordedContainerd(service: string, method: string, ns: string | undefined, request: { id?: string }): Promise<unknown> {
  const call = `${service}.${method}`;
  if (call === 'namespaces.List') return { namespaces: [{ name: 'team-a' }, { name: 'team-b' }, { name: 'broken' }] };
  if (call === 'namespaces.Create') {
    if (ns === 'team-b') throw new ContainerdCallError(GRPC_ALREADY_EXISTS, call, 'namespace team-b: already exists');
    return {};
  }
  if (ns === 'broken') throw new ContainerdCallError(GRPC_UNAVAILABLE, call, 'connection refused');
  if (call === 'containers.List') return { containers: [] };
  if (call === 'containers.Get') throw new ContainerdCallError(GRPC_NOT_FOUND, call, `container "${request.id ?? ''}" in namespace "${ns ?? ''}": not found`);
  throw new Error(`the recording has no containerd answer for ${call}`);
}

function recordedRuntime(stateDir: string): TenantRuntime {
  return {
    ctrd: { call: recordedContainerd } as unknown as ContainerdClient,
    sysrunc: '/usr/lib/sysrunc/bin/sysrunc',
    runcRoot: '/run/sysrunc-tenants/runc',
    stateDir,
    cgroupParent: 'sysrunc-tenants',
    tini: '/usr/bin/tini-static',
    snapshotter: 'overlayfs',
    netnsDir: '/var/run/netns',
    managerSocket: undefined,
    restart: { maxRestarts: 3, baseDelayMs: 500, maxDelayMs: 30_000 },
    log: pino({ level: 'silent' }),
    busy: new Set(),
  };
}

test('this version\'s tenant server answers the recorded requests line for line', HANG_GUARD, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-wire-tenants-'));
  const server = createTenantServer(recordedRuntime(dir), CONTAINERD, pino({ level: 'silent' }));
  try {
    await assertAnswersAsRecorded(server, path.join(dir, 'tenantd.sock'), recording, { pid: String(process.pid), version: SYSRUNC_VERSION });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The recorded request each of the client's calls below stands for. */
const RECORDED_SEQ: Readonly<Record<string, number>> = { ping: 1, listNS: 2, createNS: 3, list: 5, inspect: 6 };

test('this version\'s tenant client sends the recorded request lines and reads the recorded answers', HANG_GUARD, async () => {
  const values = { pid: '4242', version: '0.0.0-recorded' };
  const old = await recordedDaemon(recording, RECORDED_SEQ, values);
  try {
    const client = await TenantsClient.connect(old.socket);
    try {
      assert.deepEqual(await client.call('ping', {}), { version: '0.0.0-recorded', apiVersion: 1, pid: 4242, containerd: CONTAINERD });
      assert.deepEqual(await client.call('listNS', {}), { namespaces: ['broken', 'team-a', 'team-b'] });
      assert.deepEqual(await client.call('createNS', { ns: 'team-c' }), {});
      assert.deepEqual(await client.call('list', { ns: 'team-a' }), { containers: [] });
      await assert.rejects(client.call('inspect', { ns: 'team-a', id: 'web-1' }), (err: unknown) => err instanceof TenantError && err.code === 'not-found' && err.message === 'container web-1: not in namespace team-a');
    } finally {
      client.close();
    }
    assert.deepEqual(old.requests, recording.clientRequests);
  } finally {
    await old.close();
  }
});
