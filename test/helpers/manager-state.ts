// What a test manager holds, read the way a reviewer would check it: its run dir layout
// (<run>/containers/<id>, <run>/bundles/<id>, <dir of socket>/hints/<id>) and a sweep first, since
// the manager releases deleted containers on its own, a few ms after runc's delete returns.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ManagerClient } from '../../src/manager-client/client.ts';

const LAYOUT = ['containers', 'bundles', 'hints'];

/** Asks the manager to release what is gone now and waits for releases under way. */
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
    if (!LAYOUT.includes(name)) {
      if (mine(name)) out.push(name);
      continue;
    }
    for (const id of readdirSync(path.join(runDir, name))) if (mine(id)) out.push(`${name}/${id}`);
  }
  return out;
}
