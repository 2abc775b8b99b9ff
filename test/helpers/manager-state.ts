// What a test manager holds, read the way a reviewer would check it: its run dir layout
// (<run>/containers/<id>, <run>/bundles/<id>, <dir of socket>/hints/<id>). The manager releases a
// deleted container on its own, a few ms after runc's delete returns (its container watch, or its
// periodic sweep for a removed rootfs): a test waits for that release with readUntil, and never
// forces a sweep before it reads, which would release (and so hide) what the manager leaked.
import { existsSync, readdirSync } from 'node:fs';
import { MOUNT_NS_LOCK_FILE } from '../../src/host/mount-ns-lock.ts';
import path from 'node:path';
import { ManagerClient } from '../../src/manager-client/client.ts';
import type { Result } from '../../src/manager-api/v1.ts';

const LAYOUT = ['containers', 'bundles', 'hints'];

/**
 * Asks the manager to release what is gone now and waits for releases under way. For cleanup and
 * measurements only: before an assertion it would hide a container the manager failed to release.
 */
export async function sweepManager(socket: string): Promise<string[]> {
  const client = await ManagerClient.connect(socket);
  try {
    return (await client.call('sweep', {})).released;
  } finally {
    client.close();
  }
}

/**
 * Per-container entries the manager has on the host, as "<layout dir>/<id>" (or "<id>" for anything
 * else directly in the run dir), optionally only for ids `mine` accepts.
 */
export function runDirEntries(runDir: string, socket: string, mine: (id: string) => boolean = () => true): string[] {
  if (!existsSync(runDir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(runDir)) {
    if (name === path.basename(socket) && path.dirname(socket) === runDir) continue;
    // The manager's one lock file of the run base (src/host/mount-ns-lock.ts): kept, like the socket.
    if (name === MOUNT_NS_LOCK_FILE) continue;
    if (!LAYOUT.includes(name)) {
      if (mine(name)) out.push(name);
      continue;
    }
    for (const id of readdirSync(path.join(runDir, name))) if (mine(id)) out.push(`${name}/${id}`);
  }
  return out;
}

/**
 * A bound against hanging only: the manager's own release takes milliseconds (its container watch)
 * or up to one periodic sweep (a test manager sweeps every second, for rootfs dirs docker rm took).
 */
export const RELEASE_BOUND_MS = 30_000;

/**
 * Reads `read` until `done` accepts the reading, for at most `boundMs`; returns the last reading
 * either way, so a leak shows in the test's own assertion on it (not as a timeout).
 */
export async function readUntil<T>(read: () => T | Promise<T>, done: (reading: T) => boolean, boundMs = RELEASE_BOUND_MS): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const reading = await read();
    if (done(reading) || Date.now() > deadline) return reading;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The manager's container records as listed now (no sweep first). */
export async function listRecords(socket: string): Promise<Result<'list'>['containers']> {
  const client = await ManagerClient.connect(socket);
  try {
    return (await client.call('list', {})).containers;
  } finally {
    client.close();
  }
}
