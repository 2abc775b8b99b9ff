// Shared pieces of the end-to-end suite: one private manager + one private dockerd per test file,
// and the host-side observations the tests make (manager records, subid state, mounts, run dirs).
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { startDockerd, type DockerDaemon, type ExecOptions, type ExecResult } from '../rig/dockerd.ts';
import { execTool } from '../rig/exec.ts';
import { ensureBusyboxRootfs, ensureDockerImage, ensureRootfsTar } from '../rig/images.ts';
import { bins } from '../rig/paths.ts';
import { mountsUnder, waitUntil } from '../rig/proc.ts';
import { readUntil, runDirEntries as layoutEntries } from '../helpers/manager-state.ts';
import { startTestManager, SYSRUNC, type TestManager, type TestManagerOptions } from '../helpers/manager.ts';
import { ManagerClient } from '../../src/manager-client/client.ts';
import type { IdMapping, Result } from '../../src/manager-api/v1.ts';
import { assertNoSharedUpperWarning, kernelLogMark } from './kernel-log.ts';

export { SYSRUNC };
export type ListedContainer = Result<'list'>['containers'][number];

export interface E2ERig {
  readonly mgr: TestManager;
  readonly d: DockerDaemon;
  /** `docker run --runtime=sysrunc <args>`. */
  run(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  docker(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  dispose(): Promise<void>;
}

export interface E2ERigOptions {
  readonly mode?: TestManagerOptions['mode'];
  readonly subid?: string;
  /** Extra environment of the manager (e.g. SYSRUNC_MGR_OVERLAY_LOWERDIR). */
  readonly managerEnv?: Record<string, string>;
  /** Run sysrunc's lxcfs (TestManagerOptions.lxcfs). */
  readonly lxcfs?: boolean;
  readonly managerArgs?: readonly string[];
}

/**
 * Second runtime names whose daemon.json runtimeArgs choose settings, as an operator registers them
 * (config/daemon.json): a container picks one with `docker run --runtime=<name>` (the last
 * --runtime wins over the rig's --runtime=sysrunc). The container's environment cannot choose these.
 */
export const SETTING_RUNTIMES: Readonly<Record<string, readonly string[]>> = {
  'sysrunc-host-root-binds': ['--sysrunc-bind-ownership=host-root'],
  'sysrunc-clone': ['--sysrunc-ownership=clone'],
  'sysrunc-chown': ['--sysrunc-ownership=chown'],
  'sysrunc-shiftfs': ['--sysrunc-ownership=shiftfs'],
  'sysrunc-clone-host-root-binds': ['--sysrunc-ownership=clone', '--sysrunc-bind-ownership=host-root'],
  'sysrunc-idmap-host-root-binds': ['--sysrunc-ownership=idmap', '--sysrunc-bind-ownership=host-root'],
  'sysrunc-plain-userns': ['--sysrunc-syscont=false'],
};

/** The `sysrunc` runtime and SETTING_RUNTIMES, for startDockerd. */
export function sysruncRuntimes(): Record<string, { path: string; runtimeArgs?: string[] }> {
  const runtimes: Record<string, { path: string; runtimeArgs?: string[] }> = { sysrunc: { path: SYSRUNC } };
  for (const [name, runtimeArgs] of Object.entries(SETTING_RUNTIMES)) runtimes[name] = { path: SYSRUNC, runtimeArgs: [...runtimeArgs] };
  return runtimes;
}

/** A private manager and a dockerd whose `sysrunc` runtime (and SETTING_RUNTIMES) talks to it, with bb:local imported. */
export async function startE2ERig(name: string, o: E2ERigOptions = {}): Promise<E2ERig> {
  // Issue 25: every docker e2e file fails if overlayfs warned about a shared upper/work dir meanwhile.
  const kmsgMark = kernelLogMark();
  const mgr = await startTestManager({
    name,
    ...(o.mode !== undefined ? { mode: o.mode } : {}),
    ...(o.subid !== undefined ? { subid: o.subid } : {}),
    ...(o.managerEnv !== undefined ? { env: o.managerEnv } : {}),
    ...(o.lxcfs !== undefined ? { lxcfs: o.lxcfs } : {}),
    ...(o.managerArgs !== undefined ? { extraArgs: o.managerArgs } : {}),
  });
  let d: DockerDaemon;
  try {
    d = await startDockerd({ name, runtimes: sysruncRuntimes(), env: mgr.env });
  } catch (err) {
    await mgr.dispose();
    throw err;
  }
  try {
    await ensureDockerImage(d);
  } catch (err) {
    await d.stop();
    await mgr.dispose();
    throw err;
  }
  return {
    mgr,
    d,
    run: (args, opts) => d.docker(['run', '--runtime=sysrunc', ...args], opts),
    docker: (args, opts) => d.docker([...args], opts),
    async dispose() {
      let managerLog = '';
      try {
        await d.stop();
      } finally {
        managerLog = mgr.log();
        await mgr.dispose();
        removeEmptyDir(mgr.runDir);
      }
      assertNoSharedUpperWarning(kmsgMark, `e2e rig ${name}`, managerLog);
    },
  };
}

/**
 * TestManager.dispose() leaves the run dir (rmSync without `recursive` refuses every directory);
 * an empty one is removed here, a non-empty one stays for the tests' leftover assertions to report.
 */
export function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // gone already, or not empty
  }
}

/**
 * The teardown of a test file that starts its own dockerd and manager: both stopped (either may be
 * unset when before() failed early), the manager's empty run dir and the file's work dir removed.
 */
export async function stopOwnDockerd(d: DockerDaemon | undefined, mgr: TestManager | undefined, work: string | undefined): Promise<void> {
  try {
    await d?.stop();
  } finally {
    await mgr?.dispose();
    if (mgr !== undefined) removeEmptyDir(mgr.runDir);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }
}

/** An executable shell script `name` in dir that runs body (a wrapper a test puts in runc's place). */
export function shellScript(dir: string, name: string, body: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** The full container id of a docker container name. */
export async function containerId(d: DockerDaemon, nameOrId: string): Promise<string> {
  return (await d.docker(['inspect', '--format', '{{.Id}}', nameOrId])).stdout.trim();
}

/** `docker inspect --format <format>`, trimmed. */
export async function inspect(d: DockerDaemon, nameOrId: string, format: string): Promise<string> {
  return (await d.docker(['inspect', '--format', format, nameOrId])).stdout.trim();
}

/** Host pid of the container's init process. */
export async function initPid(d: DockerDaemon, nameOrId: string): Promise<number> {
  const pid = Number(await inspect(d, nameOrId, '{{.State.Pid}}'));
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`container ${nameOrId} has no init pid (${pid})`);
  return pid;
}

export interface RuncState {
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
}

/** `runc state` of a container as dockerd's shim sees it (same --root). */
export async function runcState(d: DockerDaemon, id: string): Promise<RuncState> {
  const r = await execTool(bins.runc, ['--root', d.runtimeRoot(), 'state', id], process.env);
  return JSON.parse(r.stdout) as RuncState;
}

/** The containers the manager has records of. */
export async function managerList(mgr: TestManager): Promise<ListedContainer[]> {
  const client = await ManagerClient.connect(mgr.socket);
  try {
    return (await client.call('list', {})).containers;
  } finally {
    client.close();
  }
}

export interface SubidAllocationRecord {
  id: string;
  uid: number;
  gid: number;
  size: number;
}

/** Allocations in the manager's persisted subid state ([] when the file does not exist yet). */
export function subidAllocations(mgr: TestManager): SubidAllocationRecord[] {
  const file = path.join(mgr.stateDir, 'subid.json');
  if (!existsSync(file)) return [];
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { allocations: SubidAllocationRecord[] };
  return doc.allocations;
}

/** Rows of a /proc/<pid>/uid_map or gid_map text. */
export function parseIdMap(text: string): IdMapping[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const [containerID, hostID, size] = l.split(/\s+/).map(Number);
      if (containerID === undefined || hostID === undefined || size === undefined) throw new Error(`bad id map line: ${l}`);
      return { containerID, hostID, size };
    });
}

/** Whether no two [start, start+size) ranges overlap. */
export function disjoint(ranges: ReadonlyArray<{ start: number; size: number }>): boolean {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let end = -Infinity;
  for (const r of sorted) {
    if (r.start < end) return false;
    end = Math.max(end, r.start + r.size);
  }
  return true;
}

export interface Leftovers {
  /** Mount points at or below the manager's run dir. */
  mounts: string[];
  /** Entries of the manager's run dir other than its socket. */
  runDirEntries: string[];
  /** Container ids the manager still has records of. */
  records: string[];
  /** Container ids the persisted subid state still holds a range for. */
  allocations: string[];
}

type Filter = (id: string) => boolean;

function onlyIds(ids: readonly string[] | undefined): Filter {
  return (id) => ids === undefined || ids.includes(id);
}

/** Mounts and run-dir entries below the manager's run dir, and allocations in its subid state. */
function hostLeftovers(mgr: TestManager, mine: Filter): Omit<Leftovers, 'records'> {
  const owner = (m: string) => {
    const parts = path.relative(mgr.runDir, m).split('/');
    return (parts[0] === 'containers' ? parts[1] : parts[0]) ?? '';
  };
  const mounts = mountsUnder([mgr.runDir]).filter((m) => mine(owner(m)));
  const runDirEntries = layoutEntries(mgr.runDir, mgr.socket, mine);
  const allocations = subidAllocations(mgr).map((a) => a.id).filter(mine);
  return { mounts, runDirEntries, allocations };
}

/**
 * What the manager still holds on the host, for all containers or (with `ids`) for those only.
 * A test asserts it deep-equals NOTHING_LEFT. No sweep is forced: this waits (bounded) for the
 * manager's own release, so whatever it leaks is still there when the bound passes.
 */
export async function leftovers(mgr: TestManager, ids?: readonly string[]): Promise<Leftovers> {
  const mine = onlyIds(ids);
  const read = async (): Promise<Leftovers> => {
    const host = hostLeftovers(mgr, mine);
    const records = (await managerList(mgr)).map((c) => c.id).filter(mine);
    return { mounts: host.mounts, runDirEntries: host.runDirEntries, records, allocations: host.allocations };
  };
  return readUntil(read, (l) => isDeepStrictEqual(l, NOTHING_LEFT));
}

export const NOTHING_LEFT: Leftovers = { mounts: [], runDirEntries: [], records: [], allocations: [] };

/** The same from the files alone (record files instead of `list`), for use while the manager is down. */
export function leftoversOnDisk(mgr: TestManager, ids?: readonly string[]): Omit<Leftovers, 'records'> & { recordFiles: string[] } {
  const mine = onlyIds(ids);
  const recordDir = path.join(mgr.stateDir, 'containers');
  const recordFiles = existsSync(recordDir) ? readdirSync(recordDir).filter((n) => n.endsWith('.json') && !n.startsWith('.') && mine(n.slice(0, -'.json'.length))) : [];
  return { ...hostLeftovers(mgr, mine), recordFiles };
}

/** Waits (bounded) until docker reports the container's State.Status as `status`. */
export async function waitForStatus(d: DockerDaemon, nameOrId: string, status: string, timeoutMs = 30_000): Promise<void> {
  await waitUntil(`container ${nameOrId} to be ${status}`, async () => {
    const r = await d.docker(['inspect', '--format', '{{.State.Status}}', nameOrId], { reject: false });
    return r.stdout.trim() === status;
  }, timeoutMs, 100);
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function inPool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A scratch directory under /var/tmp (a real ext4, idmappable), removed by the caller. */
export function scratchDir(tag: string): string {
  mkdirSync('/var/tmp', { recursive: true });
  return mkdtempSync(path.join('/var/tmp', `sysrunc-e2e-${tag}-`));
}

export const OWNED_IMAGE = 'bb-owned:local';
/** In OWNED_IMAGE: a file owned by uid:gid 1000:1000 (mode 0644). */
export const OWNED_FILE = '/home/user/owned.txt';

/**
 * Imports OWNED_IMAGE: the busybox rootfs plus OWNED_FILE (and its dir) owned by 1000:1000,
 * appended to a copy of the rootfs tar with tar's --owner/--group (no registry, no docker build).
 */
export async function ensureOwnedImage(d: DockerDaemon): Promise<void> {
  const have = await d.docker(['image', 'inspect', OWNED_IMAGE], { reject: false });
  if (have.exitCode === 0) return;
  const baseTar = await ensureRootfsTar(await ensureBusyboxRootfs());
  const work = scratchDir('owned-image');
  try {
    const stage = path.join(work, 'stage');
    mkdirSync(path.join(stage, path.dirname(OWNED_FILE)), { recursive: true });
    await execTool('sh', ['-c', `printf 'owned by 1000\\n' > "$1"; chmod 0644 "$1"`, 'sh', path.join(stage, OWNED_FILE)], process.env);
    const tar = path.join(work, 'rootfs.tar');
    await execTool('cp', [baseTar, tar], process.env);
    await execTool('tar', ['--append', '--numeric-owner', '--owner=1000', '--group=1000', '-f', tar, '-C', stage, `.${path.dirname(OWNED_FILE)}`], process.env);
    await d.docker(['import', '--change', 'CMD ["sh"]', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tar, OWNED_IMAGE]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** uid and gid of a host path (no symlink following). */
export function hostOwner(p: string): { uid: number; gid: number } {
  const s = lstatSync(p);
  return { uid: s.uid, gid: s.gid };
}
