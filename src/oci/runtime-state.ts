import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

/** A container's init process as runc recorded it (<root>/<id>/state.json, written at create). */
export interface RuncInit {
  readonly pid: number;
  /** /proc/<pid>/stat's start time (field 22), to tell a reused pid apart (every runc writes it). */
  readonly startTime: string | undefined;
  /**
   * The container made its own pid and mount namespaces (joined neither): once init exits, every
   * process in it is gone (the kernel kills the rest of a pid namespace with its init), and with
   * them every hold a process had on its mounts.
   */
  readonly ownPidAndMountNamespaces: boolean;
}

/** runc's libcontainer state.json: only what is read here. */
interface RuncStateFile {
  readonly init_process_pid?: unknown;
  readonly init_process_start?: unknown;
  readonly config?: { readonly namespaces?: ReadonlyArray<{ readonly type?: unknown; readonly path?: unknown }> };
}

/** The init process runc recorded for the container; undefined when runc has no (readable) state of it. */
export function readRuncInit(runtimeRoot: string, id: string): RuncInit | undefined {
  let state: RuncStateFile;
  try {
    state = JSON.parse(readFileSync(path.join(runtimeRoot, id, 'state.json'), 'utf8')) as RuncStateFile;
  } catch {
    return undefined;
  }
  const { init_process_pid: pid, init_process_start: start } = state;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  const own = (type: string) => state.config?.namespaces?.some((ns) => ns.type === type && (ns.path === undefined || ns.path === '')) === true;
  const startTime = typeof start === 'number' || typeof start === 'string' ? String(start) : undefined;
  return { pid, startTime, ownPidAndMountNamespaces: own('NEWPID') && own('NEWNS') };
}
