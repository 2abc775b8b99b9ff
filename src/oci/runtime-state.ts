import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { State } from './spec.ts';

export type StateQuery =
  | { readonly kind: 'present'; readonly state: State }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unknown'; readonly reason: string };

/**
 * Asks the real runc for a container's state. Only --root is passed: --log would append runc's
 * "does not exist" to the caller's log, where containerd would take it for the error of the command.
 */
export function queryContainerState(runtime: string, root: string | undefined, id: string): StateQuery {
  const argv = root === undefined ? ['state', id] : ['--root', root, 'state', id];
  const result = spawnSync(runtime, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status === 0) {
    try {
      return { kind: 'present', state: JSON.parse(result.stdout) as State };
    } catch (err) {
      return { kind: 'unknown', reason: `runc state ${id}: invalid JSON: ${(err as Error).message}` };
    }
  }
  const text = `${result.stderr}${result.stdout}`;
  if (text.includes('does not exist')) return { kind: 'missing' };
  return { kind: 'unknown', reason: text.trim().split('\n').pop() ?? `exit ${String(result.status)}` };
}

/** Whether runc has the container: it keeps <root>/<id>/state.json from create until delete. */
export function runcKnowsContainer(runtimeRoot: string, id: string): boolean {
  return existsSync(path.join(runtimeRoot, id, 'state.json'));
}
