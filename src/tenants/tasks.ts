// A container's task: created with file stdio (the shim appends the entrypoint's output to the
// container's log files), started, stopped (SIGTERM, the timeout, SIGKILL) and removed with the
// container and its snapshot. Used by Run, Delete and the restart supervisor.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ContainerdCallError, GRPC_DEADLINE, isNotFound } from './containerd-client.ts';
import { packRuncOptions } from './containerd-protos.ts';
import { logDir, type TenantRuntime } from './runtime.ts';

const SIGTERM = 15;
const SIGKILL = 9;

export function runcOptions(rt: TenantRuntime): { type_url: string; value: Buffer } {
  return packRuncOptions({ binary_name: rt.sysrunc, root: rt.runcRoot });
}

/** Ignores NOT_FOUND: the thing is gone already. */
async function gone(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

export async function createAndStartTask(rt: TenantRuntime, ns: string, id: string): Promise<number> {
  const container = (await rt.ctrd.call('containers', 'Get', ns, { id })).container;
  const snapshotKey = container?.snapshot_key ?? '';
  const rootfs = snapshotKey === '' ? [] : (await rt.ctrd.call('snapshots', 'Mounts', ns, { snapshotter: container?.snapshotter ?? '', key: snapshotKey })).mounts;
  const logs = logDir(rt, ns, id);
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  const created = await rt.ctrd.call(
    'tasks',
    'Create',
    ns,
    {
      container_id: id,
      rootfs,
      stdin: '',
      // containerd's runc shim sends both streams of a file:// URI to that one file.
      stdout: `file://${path.join(logs, 'output.log')}`,
      stderr: `file://${path.join(logs, 'output.log')}`,
      terminal: false,
      options: runcOptions(rt),
    },
    120_000,
  );
  await rt.ctrd.call('tasks', 'Start', ns, { container_id: id }, 60_000);
  return created.pid;
}

/** Waits until the process has exited; false once timeoutMs passed first. */
export async function waitExit(rt: TenantRuntime, ns: string, id: string, execId: string, timeoutMs: number): Promise<{ exited: boolean; status: number }> {
  try {
    const r = await rt.ctrd.call('tasks', 'Wait', ns, { container_id: id, exec_id: execId }, Math.max(timeoutMs, 1));
    return { exited: true, status: r.exit_status };
  } catch (err) {
    // containerd answers its own context's expiry as UNKNOWN "context deadline exceeded".
    if (err instanceof ContainerdCallError && (err.code === GRPC_DEADLINE || /deadline exceeded/.test(err.message))) return { exited: false, status: -1 };
    throw err;
  }
}

/** SIGTERM to every process, the shutdown timeout, then SIGKILL; the task is deleted after. */
export async function stopTask(rt: TenantRuntime, ns: string, id: string, timeoutSec: number): Promise<void> {
  let task;
  try {
    task = (await rt.ctrd.call('tasks', 'Get', ns, { container_id: id })).process;
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (task?.status === 'RUNNING' || task?.status === 'PAUSED' || task?.status === 'CREATED') {
    await gone(rt.ctrd.call('tasks', 'Kill', ns, { container_id: id, signal: SIGTERM, all: true }));
    if (!(await waitExit(rt, ns, id, '', timeoutSec * 1000)).exited) {
      rt.log.info({ ns, id, timeoutSec }, 'did not stop on SIGTERM in time: SIGKILL');
      await gone(rt.ctrd.call('tasks', 'Kill', ns, { container_id: id, signal: SIGKILL, all: true }));
      await waitExit(rt, ns, id, '', 30_000);
    }
  }
  // The shim runs `sysrunc delete` here: the manager releases the container's range and mounts.
  await gone(rt.ctrd.call('tasks', 'Delete', ns, { container_id: id }, 60_000));
}

/** The container record, its rootfs snapshot and its logs. */
export async function removeContainer(rt: TenantRuntime, ns: string, id: string, snapshotter: string, snapshotKey: string): Promise<void> {
  await gone(rt.ctrd.call('containers', 'Delete', ns, { id }));
  if (snapshotKey !== '') await gone(rt.ctrd.call('snapshots', 'Remove', ns, { snapshotter, key: snapshotKey }));
  rmSync(logDir(rt, ns, id), { recursive: true, force: true });
}
