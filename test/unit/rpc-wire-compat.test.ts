// The wire format did not change with the one RPC layer: a conversation recorded from the previous
// version (test/fixtures/rpc/manager-v1-previous.json, its own server and client on a stand-in
// service) is what this version's server answers, and what this version's client sends and reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createManagerServer } from '../../src/manager/server.ts';
import { ServiceError, type ManagerService } from '../../src/manager/service.ts';
import { ManagerClient, ManagerError } from '../../src/manager-client/client.ts';
import { converse, lineServer, writeLine } from '../helpers/line-server.ts';

/** A bound against a hang, not a performance assertion. */
const HANG_GUARD = { timeout: 15_000 };

interface Recording {
  readonly requests: readonly string[];
  readonly answers: readonly string[];
  readonly clientRequests: readonly string[];
}
const recording = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'rpc', 'manager-v1-previous.json'), 'utf8')) as Recording;

/** The stand-in service the recording was made with. */
const service = {
  ping: () => ({ version: '0.9.0-old', apiVersion: 1, pid: 4242 }),
  list: () => ({ containers: [] }),
  status: () => {
    throw new Error('disk on fire');
  },
  release: async (p: { id: string }) => {
    throw new ServiceError('not-found', `container ${p.id} is not registered`);
  },
  engineSettled: async () => undefined,
  engineReleased: () => undefined,
  allSettled: async () => undefined,
  sweepOrphans: async () => ['gone-1'],
} as unknown as ManagerService;

test('this version\'s manager server answers the previous version\'s requests byte for byte as it did', HANG_GUARD, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-wire-'));
  const socket = path.join(dir, 'mgr.sock');
  const server = createManagerServer(service, pino({ level: 'silent' }));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const answers = await converse(socket, recording.requests, recording.answers.length);
    // Answers to different requests may come in another order: each carries its seq.
    assert.deepEqual([...answers].sort(), [...recording.answers].sort());
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('this version\'s manager client sends the previous version\'s request lines and reads its answers', HANG_GUARD, async () => {
  // The previous manager's answers to ping and to a release of an unknown container.
  const ping = JSON.parse(recording.answers.find((a) => a.startsWith('{"seq":1,'))!) as { result: unknown };
  const notFound = JSON.parse(recording.answers.find((a) => a.startsWith('{"seq":3,'))!) as { error: unknown };
  const old = await lineServer(({ seq, method }, conn) => writeLine(conn, method === 'ping' ? { seq, result: ping.result } : { seq, error: notFound.error }));
  try {
    const client = await ManagerClient.connect(old.socket);
    try {
      assert.deepEqual(await client.call('ping', {}), ping.result);
      await assert.rejects(client.call('release', { id: 'web-1', runtimeRoot: '/run/runc' }), (err: unknown) => err instanceof ManagerError && err.code === 'not-found' && err.message === 'container web-1 is not registered');
    } finally {
      client.close();
    }
    assert.deepEqual(old.requests, recording.clientRequests);
  } finally {
    await old.close();
  }
});
