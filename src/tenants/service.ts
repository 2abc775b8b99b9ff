// The seed's container module on containerd: Run, Inspect, Delete, List, ListNS, Exec, Logs.
// Stateless: every answer is read from containerd (spec, labels, task); a failed Run removes what
// it created before answering.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { TenantError, type Container, type ContainerState, type Params, type Result } from '../tenants-api/v1.ts';
import { ContainerdCallError, GRPC_ALREADY_EXISTS, isNotFound, type ContainerRecord } from './containerd-client.ts';
import { ExecOutput } from './exec-fifos.ts';
import { allExited, killProcessTree } from '../host/process-tree.ts';
import { checkHost } from './host-checks.ts';
import { createLease, prepareSnapshot, resolveImage } from './image.ts';
import { containerdId, key, logDir, PROCESS_TYPE, RUNTIME_NAME, SPEC_TYPE, type TenantRuntime } from './runtime.ts';
import { legacyContainerdId, MAX_CONTAINERD_ID } from './container-ids.ts';
import { buildLabels, buildSpec, containerFromSpec, LABELS } from './spec.ts';
import { createAndStartTask, removeContainer, runcOptions, stopTask, waitExit } from './tasks.ts';

const DEFAULT_SHUTDOWN_S = 10;
const DEFAULT_EXEC_TIMEOUT_S = 60;

export async function listNamespaces(rt: TenantRuntime): Promise<string[]> {
  const r = await rt.ctrd.call('namespaces', 'List', undefined, {});
  return r.namespaces.map((n) => n.name).sort();
}

export async function createNamespace(rt: TenantRuntime, ns: string): Promise<void> {
  try {
    // containerd publishes the create event in the new namespace: it must be in the metadata too.
    await rt.ctrd.call('namespaces', 'Create', ns, { namespace: { name: ns, labels: {} } });
  } catch (err) {
    if (!(err instanceof ContainerdCallError && err.code === GRPC_ALREADY_EXISTS)) throw err;
  }
}

async function requireNamespace(rt: TenantRuntime, ns: string): Promise<void> {
  // Not Namespaces.Get: containerd 1.6 answers it with empty labels for a namespace that does not exist.
  if (!(await listNamespaces(rt)).includes(ns)) {
    throw new TenantError('unknown-namespace', `namespace ${ns} does not exist in containerd (create it with sysrunc-ctl tenant ns create ${ns})`);
  }
}

/**
 * The container's record, if it is one of the service's: under its id, or under the id versions
 * before 0.3 gave it (container-ids.ts), and only if its name label is the name asked for.
 */
export async function getManaged(rt: TenantRuntime, ns: string, id: string): Promise<ContainerRecord> {
  await requireNamespace(rt, ns);
  for (const cid of [containerdId(ns, id), legacyContainerdId(ns, id)]) {
    const c = await findContainer(rt, ns, cid);
    if (c !== undefined && c.labels[LABELS.managed] === '1' && c.labels[LABELS.name] === id) return c;
  }
  throw new TenantError('not-found', `container ${id}: not in namespace ${ns}`);
}

async function findContainer(rt: TenantRuntime, ns: string, cid: string): Promise<ContainerRecord | undefined> {
  try {
    return (await rt.ctrd.call('containers', 'Get', ns, { id: cid })).container ?? undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Refuses a name taken in ns (also by a container of the old naming), and an id a container of
 * the old naming in another namespace already has: the manager knows containers by id host-wide.
 */
async function refuseTaken(rt: TenantRuntime, ns: string, name: string, cid: string): Promise<void> {
  for (const taken of [cid, legacyContainerdId(ns, name)]) {
    if ((await findContainer(rt, ns, taken)) !== undefined) throw new TenantError('duplicate-name', `container ${name}: the name is taken in namespace ${ns}`);
  }
  for (const other of await listNamespaces(rt)) {
    if (other === ns || !cid.startsWith(`${other}.`)) continue;
    if ((await findContainer(rt, other, cid)) !== undefined) {
      throw new TenantError('duplicate-name', `container ${name}: its id ${cid} is taken by a container of namespace ${other} (made by an older version)`);
    }
  }
}

export async function run(rt: TenantRuntime, p: Params<'run'>): Promise<Result<'run'>> {
  const { ns, container: c } = p;
  await requireNamespace(rt, ns);
  const cid = containerdId(ns, c.name);
  if (cid.length > MAX_CONTAINERD_ID) {
    throw new TenantError('invalid-request', `container ${c.name}: its containerd id ${cid} would exceed containerd's ${MAX_CONTAINERD_ID} characters; use a shorter name`);
  }
  const { netnsPath } = checkHost(c, rt.netnsDir);
  await refuseTaken(rt, ns, c.name, cid);
  const image = c.image === undefined ? undefined : await resolveImage(rt.ctrd, ns, c.image, c.name);
  const spec = buildSpec({
    container: c,
    rootPath: c.rootfs ?? 'rootfs',
    netnsPath,
    cgroupsPath: `/${rt.cgroupParent}/${ns}/${c.name}`,
    tini: rt.tini,
    ...(image !== undefined ? { imageEnv: image.env, ...(image.workingDir !== undefined ? { imageCwd: image.workingDir } : {}) } : {}),
  });
  const env = (spec['process'] as { env: string[] }).env;
  const addedPath = !(c.env ?? image?.env ?? []).some((e) => e.startsWith('PATH=')) && env.length > 0;
  const snapshotKey = image === undefined ? '' : `tnt-rootfs-${c.name}`;
  rt.busy.add(key(ns, cid));
  let created = false;
  let lease: string | undefined;
  try {
    if (image !== undefined) {
      lease = await createLease(rt.ctrd, ns, `tnt-run-${c.name}-${randomBytes(4).toString('hex')}`);
      await prepareSnapshot(rt.ctrd, ns, rt.snapshotter, snapshotKey, c.image ?? '', image.chainId, lease);
    }
    try {
      await rt.ctrd.call('containers', 'Create', ns, {
        container: {
          id: cid,
          labels: buildLabels(c, addedPath),
          image: c.image ?? '',
          runtime: { name: RUNTIME_NAME, options: runcOptions(rt) },
          spec: { type_url: SPEC_TYPE, value: Buffer.from(JSON.stringify(spec)) },
          snapshotter: image === undefined ? '' : rt.snapshotter,
          snapshot_key: snapshotKey,
        },
      }, 30_000, lease);
    } catch (err) {
      if (err instanceof ContainerdCallError && err.code === GRPC_ALREADY_EXISTS) throw new TenantError('duplicate-name', `container ${c.name}: the name is taken in namespace ${ns}`);
      throw err;
    }
    created = true;
    await createAndStartTask(rt, ns, cid);
    rt.log.info({ ns, id: c.name }, 'started');
    return { id: c.name };
  } catch (err) {
    // Nothing of a failed Run stays: task (sysrunc releases), container, snapshot, logs.
    await stopTask(rt, ns, cid, 0).catch(() => undefined);
    if (created) await removeContainer(rt, ns, cid, rt.snapshotter, snapshotKey).catch(() => undefined);
    else if (snapshotKey !== '') await rt.ctrd.call('snapshots', 'Remove', ns, { snapshotter: rt.snapshotter, key: snapshotKey }).catch(() => undefined);
    if (err instanceof TenantError) throw err;
    throw new TenantError('containerd-failed', `run ${ns}/${c.name}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    // The container now references its snapshot (or both are gone): the lease has done its job.
    if (lease !== undefined) await rt.ctrd.call('leases', 'Delete', ns, { id: lease }).catch(() => undefined);
    rt.busy.delete(key(ns, cid));
  }
}

function labelsOf(c: ContainerRecord): Record<string, string> {
  return c.labels ?? {};
}

function specOf(c: ContainerRecord): unknown {
  const value = c.spec?.value;
  return value === undefined ? {} : JSON.parse(Buffer.from(value).toString('utf8'));
}

async function stateOf(rt: TenantRuntime, ns: string, c: ContainerRecord): Promise<ContainerState> {
  const labels = labelsOf(c);
  const id = labels[LABELS.name] ?? c.id;
  let status = 'none';
  let pid = 0;
  try {
    const t = (await rt.ctrd.call('tasks', 'Get', ns, { container_id: c.id })).process;
    status = String(t?.status ?? 'unknown').toLowerCase();
    pid = t?.pid ?? 0;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const failed = labels[LABELS.failed];
  return { id, status, pid, restarts: Number(labels[LABELS.restarts] ?? '0'), ...(failed !== undefined ? { failed } : {}) };
}

export async function inspect(rt: TenantRuntime, p: Params<'inspect'>): Promise<Result<'inspect'>> {
  const c = await getManaged(rt, p.ns, p.id);
  const container: Container = containerFromSpec(specOf(c), labelsOf(c));
  return { container, state: await stateOf(rt, p.ns, c) };
}

export async function list(rt: TenantRuntime, p: Params<'list'>): Promise<Result<'list'>> {
  await requireNamespace(rt, p.ns);
  const all = (await rt.ctrd.call('containers', 'List', p.ns, {})).containers;
  const ours = all.filter((c) => labelsOf(c)[LABELS.managed] === '1');
  return { containers: await Promise.all(ours.map((c) => stateOf(rt, p.ns, c))) };
}

export async function remove(rt: TenantRuntime, p: Params<'delete'>): Promise<void> {
  const c = await getManaged(rt, p.ns, p.id);
  const labels = labelsOf(c);
  const cid = c.id;
  rt.busy.add(key(p.ns, cid));
  try {
    await stopTask(rt, p.ns, cid, Number(labels[LABELS.shutdownTimeout] ?? DEFAULT_SHUTDOWN_S));
    await removeContainer(rt, p.ns, cid, String(c['snapshotter'] ?? ''), String(c['snapshot_key'] ?? ''));
    rt.log.info({ ns: p.ns, id: p.id }, 'deleted');
  } finally {
    rt.busy.delete(key(p.ns, cid));
  }
}

export async function exec(rt: TenantRuntime, p: Params<'exec'>): Promise<Result<'exec'>> {
  const c = await getManaged(rt, p.ns, p.id);
  const cid = c.id;
  const spec = specOf(c) as { process?: Record<string, unknown>; linux?: { namespaces?: Array<{ type: string; path?: string }> } };
  const execId = `tnt-exec-${randomBytes(6).toString('hex')}`;
  const dir = path.join(rt.stateDir, 'exec', `${p.ns}-${p.id}-${execId}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const proc = { ...(spec.process ?? {}), args: p.args, terminal: false };
  let out: ExecOutput | undefined;
  try {
    out = new ExecOutput(dir);
    await rt.ctrd.call('tasks', 'Exec', p.ns, {
      container_id: cid,
      exec_id: execId,
      stdin: '',
      stdout: out.stdoutPath,
      stderr: out.stderrPath,
      terminal: false,
      spec: { type_url: PROCESS_TYPE, value: Buffer.from(JSON.stringify(proc)) },
    });
    const started = await rt.ctrd.call('tasks', 'Start', p.ns, { container_id: cid, exec_id: execId });
    const timeoutS = p.timeout ?? DEFAULT_EXEC_TIMEOUT_S;
    const r = await waitExit(rt, p.ns, cid, execId, timeoutS * 1000);
    if (!r.exited) {
      await killTimedOutExec(rt, p, cid, execId, Number(started['pid'] ?? 0));
      throw new TenantError('timeout', `exec in ${p.ns}/${p.id}: ${p.args[0]} still ran after ${timeoutS} s: killed`);
    }
    // DeleteProcess returns once the shim has copied all the output into the FIFOs.
    await rt.ctrd.call('tasks', 'DeleteProcess', p.ns, { container_id: cid, exec_id: execId }).catch(() => undefined);
    return { exitCode: r.status, ...out.finish() };
  } catch (err) {
    if (err instanceof TenantError) throw err;
    // runc before 1.2 joins the user namespace first, after which a host-owned netns cannot be joined.
    const hostNetns = spec.linux?.namespaces?.some((n) => n.type === 'network' && n.path !== undefined) === true;
    const hint = hostNetns ? ' (the container joined a host-owned named netns: runc before 1.2 cannot exec into it)' : '';
    throw new TenantError(isNotFound(err) ? 'not-found' : 'containerd-failed', `exec in ${p.ns}/${p.id}: ${err instanceof Error ? err.message : String(err)}${hint}`);
  } finally {
    await rt.ctrd.call('tasks', 'DeleteProcess', p.ns, { container_id: cid, exec_id: execId }).catch(() => undefined);
    out?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The exec'd process and every process it started (containerd's Kill reaches the exec's own
 * process only; its children would stay in the container). Any failure here is the caller's error.
 */
async function killTimedOutExec(rt: TenantRuntime, p: Params<'exec'>, cid: string, execId: string, pid: number): Promise<void> {
  const killed = pid > 0 ? killProcessTree(pid) : [];
  try {
    await rt.ctrd.call('tasks', 'Kill', p.ns, { container_id: cid, exec_id: execId, signal: constants.signals.SIGKILL });
  } catch (err) {
    // Not found: the tree's SIGKILL got there first, and the shim has reaped it.
    if (!isNotFound(err)) throw new TenantError('containerd-failed', `exec in ${p.ns}/${p.id}: kill after the timeout: ${err instanceof Error ? err.message : String(err)}`);
  }
  const exited = (await waitExit(rt, p.ns, cid, execId, 10_000)).exited;
  // SIGKILL is delivered asynchronously: the answer waits until each child has died too.
  for (let i = 0; i < 100 && !allExited(killed); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!exited || !allExited(killed)) throw new TenantError('containerd-failed', `exec in ${p.ns}/${p.id}: ${p.args[0]} or a child still runs after SIGKILL`);
  rt.log.info({ ns: p.ns, id: p.id, execId, killed: killed.length }, 'killed a timed-out exec and its children');
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The last n lines of a text (all of it when n is undefined). */
export function tailLines(text: string, n: number | undefined): string {
  if (n === undefined) return text;
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  return [...lines.slice(-n), ...(trailing !== undefined ? [''] : [])].join('\n');
}

export async function logs(rt: TenantRuntime, p: Params<'logs'>): Promise<Result<'logs'>> {
  const cid = String((await getManaged(rt, p.ns, p.id))['id']);
  // The shim's file:// stdio writes stdout and stderr into the one file, interleaved as written.
  return { stdout: tailLines(readText(path.join(logDir(rt, p.ns, cid), 'output.log')), p.tail), stderr: '' };
}
