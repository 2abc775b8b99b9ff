import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { socketPeerCred, type PeerCred } from '../../src/host/peer-cred.ts';
import { requestAs } from '../fixtures/host/socket-client.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sysrunc-peer-'));
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

/** A server that records the peer credentials of the first connection it accepts, and echoes. */
async function credServer(name: string): Promise<{ socket: string; peer: Promise<PeerCred>; close(): void }> {
  const socket = path.join(dir, name);
  let resolvePeer: (p: PeerCred) => void = () => {};
  const peer = new Promise<PeerCred>((r) => (resolvePeer = r));
  const server = createServer((c: Socket) => {
    resolvePeer(socketPeerCred(c));
    c.on('data', () => c.end('ok\n'));
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  chmodSync(socket, 0o666);
  return { socket, peer, close: () => server.close() };
}

test('the peer credentials of a connection from this process are its pid and uid 0', async () => {
  const s = await credServer('self.sock');
  try {
    const c = createConnection(s.socket);
    const peer = await s.peer;
    c.destroy();
    assert.deepEqual(peer, { pid: process.pid, uid: 0, gid: 0 });
  } finally {
    s.close();
  }
});

test('the peer credentials of a connection from a process running as 65534:65534 say uid 65534', async () => {
  const s = await credServer('nobody.sock');
  try {
    await requestAs(s.socket, 'hi', { uid: 65534, gid: 65534 });
    const peer = await s.peer;
    assert.equal(peer.uid, 65534);
    assert.equal(peer.gid, 65534);
    assert.notEqual(peer.pid, process.pid);
  } finally {
    s.close();
  }
});
