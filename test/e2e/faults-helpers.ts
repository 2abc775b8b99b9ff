// What the fault tests check after each fault, read from the host and the manager's files rather
// than through the code under test: mounts, records, allocations, files under the state and run dirs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestManager } from '../helpers/manager.ts';
import { listRecords, readUntil, runDirEntries } from '../helpers/manager-state.ts';
import { isDeepStrictEqual } from 'node:util';
import { mountsUnder } from '../rig/proc.ts';

export interface Allocation {
  id: string;
  uid: number;
  gid: number;
  size: number;
}

/** The allocations in the manager's persisted subid state. */
export function allocations(mgr: TestManager): Allocation[] {
  const file = path.join(mgr.stateDir, 'subid.json');
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as { allocations: Allocation[] }).allocations;
}

/** No two allocations overlap, in uids or in gids. */
export function assertDisjoint(held: readonly Allocation[]): void {
  for (const key of ['uid', 'gid'] as const) {
    const sorted = [...held].sort((a, b) => a[key] - b[key]);
    for (let i = 1; i < sorted.length; i++) {
      const [prev, cur] = [sorted[i - 1] as Allocation, sorted[i] as Allocation];
      assert.ok(prev[key] + prev.size <= cur[key], `${key} ranges of ${prev.id} and ${cur.id} overlap: ${JSON.stringify([prev, cur])}`);
    }
  }
}

/** The host uid range a running container's init has (its /proc/<pid>/uid_map, one line). */
export function liveUidRange(runcRoot: string, id: string): { start: number; size: number } {
  const state = JSON.parse(execFileSync('runc', ['--root', runcRoot, 'state', id], { encoding: 'utf8' })) as { pid: number };
  const lines = readFileSync(`/proc/${state.pid}/uid_map`, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1, `uid_map of ${id}: ${lines.join(' | ')}`);
  const [inside, start, size] = (lines[0] ?? '').trim().split(/\s+/).map(Number);
  assert.equal(inside, 0);
  return { start: start ?? -1, size: size ?? -1 };
}

/** Files the manager keeps whatever it holds: everything else under the state dir is per container. */
const STATE_FILES = new Set(['subid.json', 'volumes.json', 'mgr.pid']);

/** Non-directory entries under the state dir, other than the manager's own files. */
export function stateDirFiles(stateDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (lstatSync(p).isDirectory()) walk(p);
      else if (!(dir === stateDir && STATE_FILES.has(name))) out.push(path.relative(stateDir, p));
    }
  };
  if (existsSync(stateDir)) walk(stateDir);
  return out.sort();
}

/** Directories directly in the state dir's per-container dirs (volumes/<id>, clones/<id>, journals/<id>). */
function perContainerDirs(stateDir: string): string[] {
  return ['volumes', 'clones', 'journals'].flatMap((d) => (existsSync(path.join(stateDir, d)) ? readdirSync(path.join(stateDir, d)).map((n) => `${d}/${n}`) : []));
}

export interface Held {
  records: string[];
  allocations: string[];
  mounts: string[];
  runDirEntries: string[];
  stateFiles: string[];
  stateDirs: string[];
}

export const NOTHING: Held = { records: [], allocations: [], mounts: [], runDirEntries: [], stateFiles: [], stateDirs: [] };

/**
 * Everything the manager holds on the host; with `id`, only what names that container. No sweep is
 * forced: this waits (bounded) for the manager's own release (its watch; its periodic sweep for a
 * stopped container whose rootfs went), so whatever it leaks is still there when the bound passes.
 */
export async function held(mgr: TestManager, id?: string): Promise<Held> {
  return readUntil(() => heldNow(mgr, id), (h) => isDeepStrictEqual(h, NOTHING));
}

/** What the manager holds right now (held's single reading). */
async function heldNow(mgr: TestManager, id: string | undefined): Promise<Held> {
  const records = (await listRecords(mgr.socket)).map((c) => c.id);
  const mine = (s: string) => id === undefined || s === id || s.split('/').includes(id) || s.includes(`/${id}/`) || s.includes(`.${id}.`) || s.endsWith(`/${id}.json`);
  return {
    records: records.filter(mine),
    allocations: allocations(mgr).map((a) => a.id).filter(mine),
    mounts: mountsUnder([mgr.runDir, mgr.stateDir]).filter(mine),
    runDirEntries: runDirEntries(mgr.runDir, mgr.socket).filter(mine),
    stateFiles: stateDirFiles(mgr.stateDir).filter(mine),
    stateDirs: perContainerDirs(mgr.stateDir).filter(mine),
  };
}

/** Nothing at all (or, with `id`, nothing of that container) is left with the manager. */
export async function assertNothingLeft(mgr: TestManager, id?: string): Promise<void> {
  assert.deepEqual(await held(mgr, id), NOTHING);
}

/** A bound against hanging only (the runner's per-test timeout is the other). */
const LOG_WAIT_MS = 60_000;

/**
 * Waits until the manager's log, from `from` on (a length of it taken before the request: earlier
 * tests logged the same lines), matches; fails after LOG_WAIT_MS instead of hanging.
 */
export async function waitForLog(mgr: TestManager, re: RegExp, from: number): Promise<void> {
  const deadline = Date.now() + LOG_WAIT_MS;
  while (!re.test(mgr.log().slice(from))) {
    if (Date.now() > deadline) assert.fail(`the manager did not log ${re} within ${LOG_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The call was stopped by the fault at `point`, not by anything else: the fault's own line is in
 * the caller's stderr (the launcher or the per-call binary killed itself, or the manager killed
 * it: exit 137, SIGKILL) or in the manager's log since `logMark` (the manager killed itself: the
 * call fails).
 */
export function assertKilledAt(out: { exitCode: number; stderr: string }, point: string, mgr: TestManager, logMark: number): void {
  const line = new RegExp(`SYSRUNC_TEST_FAULT: killing (caller )?pid \\d+ (and its children )?at ${point.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`);
  const managerLog = mgr.log().slice(logMark);
  const byCaller = line.test(out.stderr);
  const byManager = line.test(managerLog);
  assert.ok(byCaller || byManager, `no fault line for ${point} (exit ${out.exitCode}): ${out.stderr}`);
  const callerKilled = byCaller || /killing caller pid/.test(managerLog.match(line)?.[0] ?? '');
  if (callerKilled) assert.equal(out.exitCode, 137, `killed by SIGKILL at ${point}: ${out.stderr}`);
  else assert.notEqual(out.exitCode, 0, `the call went on past ${point}`);
}

/** Runs fn against the manager restarted with `env`, then restarts it without (also when fn fails). */
export async function withManagerEnv(mgr: TestManager, env: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  mgr.setEnv(env);
  await mgr.restart();
  try {
    await fn();
  } finally {
    mgr.setEnv({});
    await mgr.restart();
  }
}
