// The depot daemon's wire format stays what it was: a conversation recorded from its own server
// and client (test/fixtures/rpc/depot-v1.json) is what this version's server answers, stream events
// included, and what this version's client sends and reads. The depot is a real one on a temporary
// directory: container web-1 holds process p1, which exited 3 after writing to both streams, and
// container web-2 an exited process p2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createDepotServer } from '../../src/depot/server.ts';
import { Depot } from '../../src/depot/layout.ts';
import { DepotClient } from '../../src/depot-api/client.ts';
import { DepotError, type AttachEvent } from '../../src/depot-api/v1.ts';
import { SYSRUNC_VERSION } from '../../src/common/version.ts';
import { assertAnswersAsRecorded, readRecording, recordedDaemon } from '../helpers/wire-recording.ts';

/** A bound against a hang, not a performance assertion. */
const HANG_GUARD = { timeout: 15_000 };
const recording = readRecording('depot-v1.json');

function exitedProcess(depot: Depot, container: string, id: string, files: Record<string, string>): void {
  const dir = depot.processDir(container, id);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
}

/** The depot the recording was made on, under a new temporary directory. */
function recordedDepot(): { root: string; depot: Depot } {
  const root = mkdtempSync(path.join(tmpdir(), 'sysrunc-wire-depot-'));
  const depot = new Depot(path.join(root, 'depot'));
  exitedProcess(depot, 'web-1', 'p1', { 'process.json': '{"args":["sh","-c","echo hello; echo oops >&2; exit 3"],"terminal":false}', pid: '4243', stdout: 'hello\n', stderr: 'oops\n', exitcode: '3\n' });
  exitedProcess(depot, 'web-2', 'p2', { 'process.json': '{"args":["true"],"terminal":false}', pid: '4244', exitcode: '0\n' });
  return { root, depot };
}

test('this version\'s depot server answers the recorded requests line for line, a stream\'s events in order', HANG_GUARD, async () => {
  const { root, depot } = recordedDepot();
  const none = path.join(root, 'not-run');
  const server = createDepotServer({ depot, sysrunc: none, runcRoot: none, init: none, supervisor: none, maxOutputBytes: 1 << 20, env: {} }, pino({ level: 'silent' }));
  try {
    await assertAnswersAsRecorded(server, path.join(root, 'depotd.sock'), recording, { pid: String(process.pid), version: SYSRUNC_VERSION, depot: depot.root });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** The recorded request each of the client's calls below stands for. */
const RECORDED_SEQ: Readonly<Record<string, number>> = { ping: 1, list: 2, wait: 4, attach: 5, ps: 8 };

test('this version\'s depot client sends the recorded request lines and reads the recorded answers and events', HANG_GUARD, async () => {
  const values = { pid: '4242', version: '0.0.0-recorded', depot: '/run/sysrunc-depot/depot' };
  const old = await recordedDaemon(recording, RECORDED_SEQ, values);
  try {
    const client = await DepotClient.connect(old.socket);
    try {
      assert.deepEqual(await client.call('ping', {}), { version: '0.0.0-recorded', apiVersion: 1, pid: 4242, depot: '/run/sysrunc-depot/depot' });
      assert.deepEqual((await client.call('list', {})).containers.map((c) => [c.id, c.status]), [['web-1', 'stopped'], ['web-2', 'stopped']]);
      assert.deepEqual(await client.call('wait', { container: 'web-1', process: 'p1' }), { exitCode: 3 });
      const events: AttachEvent[] = [];
      assert.deepEqual(await client.attach({ container: 'web-1', process: 'p1' }, (e) => events.push(e)), { exitCode: 3 });
      assert.deepEqual(events.map((e) => [e.stream, Buffer.from(e.data, 'base64').toString(), e.offset]), [['stdout', 'hello\n', 6], ['stderr', 'oops\n', 5]]);
      await assert.rejects(client.call('ps', { container: 'ghost' }), (err: unknown) => err instanceof DepotError && err.code === 'not-found' && err.message.startsWith('container ghost: '));
    } finally {
      client.close();
    }
    assert.deepEqual(old.requests, recording.clientRequests);
  } finally {
    await old.close();
  }
});
