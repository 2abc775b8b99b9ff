// A daemon's socket: whether one answers on it (liveness), and listening on it, root only.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import path from 'node:path';

/** Whether a live daemon accepts connections on socketPath (a socket left by one killed -9 does not). */
export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(socketPath);
    probe.once('connect', () => (probe.destroy(), resolve(true)));
    probe.once('error', () => resolve(false));
  });
}

export class SocketTakenError extends Error {
  override readonly name = 'SocketTakenError';
}

/**
 * Listens on socketPath, mode 0600, its directory made 0711 if missing. A socket a live daemon
 * answers on is not taken (SocketTakenError, naming `daemon`); one left by a daemon killed -9 is
 * replaced. The peer check (server.ts) is what keeps non-root callers out; the mode is a second wall.
 */
export async function listenOnSocket(server: Server, socketPath: string, daemon: string): Promise<void> {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o711 });
  if (await socketAnswers(socketPath)) throw new SocketTakenError(`another ${daemon} is listening on ${socketPath}`);
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
}
