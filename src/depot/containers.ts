// Depot containers: create (sysrunc run -d of a bundle whose PID 1 is the keep-alive init) and
// destroy (sysrunc delete --force, the supervisors drain, the directory goes).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DepotError, type ContainerInfo, type Params } from '../depot-api/v1.ts';
import { pidAlive, readOptional, readPid } from './layout.ts';
import { containerConfig } from './spec.ts';
import type { DepotRuntime } from './runtime.ts';
import { supervisorAlive } from './tracker.ts';

export type { DepotRuntime };

const SUPERVISOR_DRAIN_MS = 10_000;

/** Runs the runtime to completion; stdout and stderr go to a file (an init would hold pipes open). */
export function runRuntime(rt: DepotRuntime, args: readonly string[], outFile: string): Promise<{ code: number; output: string }> {
  const fd = openSync(outFile, 'w', 0o600);
  return new Promise((resolve, reject) => {
    const child = spawn(rt.sysrunc, ['--root', rt.runcRoot, ...args], { stdio: ['ignore', fd, fd], env: rt.env });
    closeSync(fd);
    child.once('error', (err) => reject(new Error(`spawn ${rt.sysrunc}: ${err.message}`)));
    child.once('exit', (code, signal) => {
      const output = readOptional(outFile) ?? '';
      rmSync(outFile, { force: true });
      resolve({ code: code ?? 128 + (signal === null ? 0 : 9), output: output.trim() });
    });
  });
}

export async function createContainer(rt: DepotRuntime, p: Params<'create'>): Promise<ContainerInfo> {
  const dir = rt.depot.containerDir(p.id);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DepotError('conflict', `container ${p.id}: ${dir} already exists`);
    throw new Error(`mkdir ${dir}: ${(err as Error).message}`);
  }
  try {
    mkdirSync(rt.depot.processesDir(p.id), { mode: 0o700 });
    writeFileSync(rt.depot.bundleConfig(p.id), `${JSON.stringify(containerConfig(p, rt.init), null, 2)}\n`, { mode: 0o600 });
    const pidfile = path.join(dir, 'pidfile');
    const r = await runRuntime(rt, ['--log', path.join(dir, 'log'), '--log-format', 'json', 'run', '-d', '--bundle', dir, '--pid-file', pidfile, p.id], path.join(dir, '.create.out'));
    if (r.code !== 0) throw new DepotError('runtime-failed', `container ${p.id}: ${rt.sysrunc} run -d --bundle ${dir} exited ${r.code}: ${r.output}`);
    return { id: p.id, pid: readPid(pidfile) ?? 0, status: 'running', bundle: dir };
  } catch (err) {
    // Nothing of a failed create stays: runc has no container (its run failed), so the dir can go.
    await runRuntime(rt, ['delete', '--force', p.id], path.join(rt.depot.root, `.${p.id}.cleanup.out`)).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function containerInfo(rt: DepotRuntime, id: string): Promise<ContainerInfo> {
  const dir = rt.depot.mustExist(id);
  const pid = readPid(path.join(dir, 'pidfile')) ?? 0;
  // runc's state of a running container would cost a process per container; its init alive is enough.
  return { id, pid, status: pid > 0 && pidAlive(pid) ? 'running' : 'stopped', bundle: dir };
}

export async function destroyContainer(rt: DepotRuntime, id: string): Promise<{ processes: number }> {
  const dir = rt.depot.mustExist(id);
  const r = await runRuntime(rt, ['delete', '--force', id], path.join(rt.depot.root, `.${id}.delete.out`));
  if (r.code !== 0 && !/does not exist|not exist/.test(r.output)) {
    throw new DepotError('runtime-failed', `container ${id}: ${rt.sysrunc} delete --force ${id} exited ${r.code}: ${r.output}`);
  }
  // The pid namespace is gone with its init, so every process ended: the supervisors drain their
  // output and write the exit codes, then exit. One that does not is killed (it holds nothing left).
  const processes = rt.depot.processes(id);
  const deadline = Date.now() + SUPERVISOR_DRAIN_MS;
  for (const proc of processes) {
    const pidFile = path.join(rt.depot.processDir(id, proc), 'supervisor.pid');
    const pid = readPid(pidFile);
    if (pid === undefined) continue;
    while (supervisorAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    if (supervisorAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return { processes: processes.length };
}
