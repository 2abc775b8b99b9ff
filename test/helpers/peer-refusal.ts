// A daemon's refusal of a non-root peer, checked the same way for the three daemons: the socket
// is opened up (dir and socket world-accessible) so that only the peer check decides, then closed again.
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import { requestAs } from '../fixtures/host/socket-client.ts';

export async function assertRefusesNonRootPeer(socket: string, daemon: string): Promise<void> {
  const dir = path.dirname(socket);
  const dirMode = statSync(dir).mode & 0o7777;
  chmodSync(dir, 0o755);
  chmodSync(socket, 0o666);
  try {
    const run = await requestAs(socket, JSON.stringify({ v: 1, seq: 7, method: 'ping', params: {} }), { uid: 65534, gid: 65534 });
    assert.equal(run.closed, true);
    const reply = JSON.parse(run.reply) as { seq: number; error?: { code: string; message: string }; result?: unknown };
    assert.equal(reply.result, undefined);
    assert.equal(reply.seq, 7);
    assert.equal(reply.error?.code, 'invalid-request');
    assert.match(reply.error?.message ?? '', new RegExp(`^peer uid 65534 \\(pid \\d+\\): only root may use ${daemon}$`));
  } finally {
    chmodSync(socket, 0o600);
    chmodSync(dir, dirMode);
  }
}
