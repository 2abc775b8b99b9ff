// What a sysrunc call can leave behind on the host, read independently of sysrunc's own code
// paths: the bundle's files, the manager's records, mounts and per-container run dirs.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { listRecords, readUntil, runDirEntries as layoutEntries } from '../../helpers/manager-state.ts';
import type { TestManager } from '../../helpers/manager.ts';

/**
 * Every entry under `root` (root included) as "<relative path>" -> "<type> <mode> <uid>:<gid>
 * <sha256 of the content | link target>", so content, ownership, permission, added and removed
 * files all show. A missing root gives an empty map.
 */
export function snapshotTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const rel = path.relative(root, p) || '.';
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) {
      out.set(rel, `link ${meta} ${readlinkSync(p)}`);
    } else if (st.isDirectory()) {
      out.set(rel, `dir ${meta}`);
      for (const name of readdirSync(p).sort()) visit(path.join(p, name));
    } else if (st.isFile()) {
      out.set(rel, `file ${meta} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    } else {
      out.set(rel, `other ${meta} ${st.rdev}`);
    }
  };
  visit(root);
  return out;
}

/** Mount points at or below `dir` in this mount namespace. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((point) => point === dir || point.startsWith(prefix));
}

export interface ManagerRecord {
  readonly id: string;
  readonly runtimeRoot: string;
  readonly bundle: string;
  readonly actions: readonly unknown[];
}

/** The manager's container records as it lists them now (no sweep first). */
export async function managerRecords(manager: TestManager): Promise<ManagerRecord[]> {
  return listRecords(manager.socket);
}

/**
 * The manager's records once those `gone` picks (default: all) are gone, by the manager's own
 * release: no sweep is forced, so a record it fails to release is still there when the bound
 * passes, and the test's assertion on the result shows it.
 */
export async function recordsOnceReleased(manager: TestManager, gone: (r: ManagerRecord) => boolean = () => true): Promise<ManagerRecord[]> {
  return readUntil(() => listRecords(manager.socket), (records) => !records.some(gone));
}

/**
 * `delete --force <id>` through sysrunc, then the manager's record of it gone: a delete answers
 * once the engine's part of the release is done and the run dir's part follows, so a test that
 * snapshots the records next must not catch that part half way. Returns the delete's exit code.
 */
export async function deleteAndSettle(fx: { sysrunc: { cli(argv: readonly string[]): Promise<{ exitCode: number }> }; manager: TestManager }, id: string): Promise<number> {
  const out = await fx.sysrunc.cli(['delete', '--force', id]);
  await recordsOnceReleased(fx.manager, (r) => r.id === id);
  return out.exitCode;
}

/** Per-container entries under the manager's run dir (run dirs, prepared bundles, hints). */
export function runDirEntries(manager: TestManager): string[] {
  return layoutEntries(manager.runDir, manager.socket);
}
