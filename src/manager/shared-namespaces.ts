// Containers that join another container's namespaces by path (Docker's --network/--ipc/--pid
// container:X, a Kubernetes pod's app containers joining its sandbox): a namespace is administered
// by the user namespace that owns it, so a joiner must join that sysrunc container's user namespace
// too, with the same mappings. Which container owns a namespace is read off the kernel: the inode
// of /proc/<init pid>/ns/<type> of each container the manager prepared.
import { statSync } from 'node:fs';
import type { Spec } from '../oci/spec.ts';
import { readRuncInit } from '../oci/runtime-state.ts';
import type { ContainerRecord } from './registry.ts';
import { ServiceError } from './service-error.ts';
import { owningUserNamespace } from '../host/namespace-owner.ts';
import { RUNC_1_1_FEATURES, type RuntimeFeatures } from '../spec-transform/runtime-features.ts';

const NS_FILES: Readonly<Record<string, string>> = { network: 'net', mount: 'mnt', pid: 'pid', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup', time: 'time' };

/** The sysrunc container whose user namespace a config must join, and how to name it. */
export interface SharedUserns {
  readonly owner: ContainerRecord;
  /** /proc/<owner's init pid>/ns/user */
  readonly path: string;
  /** The namespace types the config joins from that container. */
  readonly types: readonly string[];
}

/**
 * Finds the owner of every namespace the config joins by path. Joining namespaces of one sysrunc
 * container means joining its user namespace (returned); a namespace that is the caller's own is
 * left to the system-container rules (host namespaces); a pinned network namespace (a file that
 * no container's init is in, as CNI and `ip netns` make) keeps the container's own user namespace;
 * so does any other namespace no sysrunc container owns (another runtime's, a host process's) when
 * runc joins such namespaces itself, for exec too (runtime.joinsHostOwnedNamespaces, runc 1.2.1+);
 * on runc 1.1 that is refused, as are two sysrunc containers at once on any runc.
 */
export function sharedUserns(id: string, spec: Spec, callerPid: number, records: readonly ContainerRecord[], runtime: RuntimeFeatures = RUNC_1_1_FEATURES): SharedUserns | undefined {
  const joins = (spec.linux?.namespaces ?? []).filter((ns) => ns.path !== undefined && ns.path !== '' && ns.type !== 'user' && NS_FILES[ns.type] !== undefined);
  if (joins.length === 0) return undefined;
  forgetInitPidsExcept(records);
  const inits = records.filter((r) => r.id !== id && r.stopped !== true).flatMap((r) => {
    const pid = cachedInitPid(r);
    return pid === undefined ? [] : [{ record: r, pid }];
  });
  let found: { record: ContainerRecord; pid: number; types: string[] } | undefined;
  for (const ns of joins) {
    const file = NS_FILES[ns.type] as string;
    const target = inode(ns.path as string, `linux.namespaces ${ns.type} path ${ns.path}`);
    if (sameInode(target, inodeOrUndefined(`/proc/${callerPid}/ns/${file}`))) continue;
    const holder = inits.find((c) => sameInode(target, inodeOrUndefined(`/proc/${c.pid}/ns/${file}`)));
    // A container holds a network namespace it did not make when it joined it (podman's infra joins
    // the one netavark made, which the host's user namespace owns): its user namespace is no way in.
    const owner = holder !== undefined && ns.type === 'network' && !ownedByUsernsOf(ns.path as string, holder.pid) ? undefined : holder;
    if (owner === undefined) {
      if (runtime.joinsHostOwnedNamespaces || (ns.type === 'network' && !(ns.path as string).startsWith('/proc/'))) continue;
      throw new ServiceError(
        'invalid-request',
        `container ${id}: linux.namespaces ${ns.type} path ${ns.path} is not a namespace of a container sysrunc started; its user namespace would stay in charge of it, and this runc (no linux.mountExtensions in its features: before 1.2) cannot exec into a container that joined it, so sysrunc does not join it`,
      );
    }
    if (found !== undefined && found.record.id !== owner.record.id) {
      throw new ServiceError(
        'invalid-request',
        `container ${id}: joins namespaces of two containers (${found.types.join(', ')} of ${found.record.id}, ${ns.type} of ${owner.record.id}); one container can share only one user namespace`,
      );
    }
    found = { ...owner, types: [...(found?.types ?? []), ns.type] };
  }
  if (found === undefined) return undefined;
  return { owner: found.record, path: `/proc/${found.pid}/ns/user`, types: found.types };
}

/**
 * Init pids already read, by container life (runtime root, id, and the record's createdAt: a new
 * create of the same id is a new record). runc's state.json holds the whole config; parsing every
 * container's at each namespace-joining create (every pod sandbox and pod container) made such a
 * create O(containers) in file reads and JSON parses. A container's init pid never changes.
 */
const initPids = new Map<string, number>();
const lifeKey = (r: ContainerRecord): string => `${r.runtimeRoot}\0${r.id}\0${r.createdAt}`;

function cachedInitPid(record: ContainerRecord): number | undefined {
  const key = lifeKey(record);
  const known = initPids.get(key);
  if (known !== undefined) return known;
  const pid = readRuncInit(record.runtimeRoot, record.id)?.pid;
  if (pid !== undefined) initPids.set(key, pid);
  return pid;
}

/** Drops the pids of containers the manager no longer has records of (the cache stays as large as the registry). */
function forgetInitPidsExcept(records: readonly ContainerRecord[]): void {
  const live = new Set(records.map(lifeKey));
  for (const key of initPids.keys()) if (!live.has(key)) initPids.delete(key);
}

interface Inode {
  readonly dev: number;
  readonly ino: number;
}

function inode(p: string, what: string): Inode {
  try {
    const st = statSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    throw new ServiceError('invalid-request', `${what}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function inodeOrUndefined(p: string): Inode | undefined {
  try {
    const st = statSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** Whether the namespace at nsPath belongs to the user namespace of pid (assumed so where the kernel will not say). */
function ownedByUsernsOf(nsPath: string, pid: number): boolean {
  let owning: Inode;
  try {
    owning = owningUserNamespace(nsPath);
  } catch {
    return true;
  }
  return sameInode(owning, inodeOrUndefined(`/proc/${pid}/ns/user`));
}

function sameInode(a: Inode, b: Inode | undefined): boolean {
  return b !== undefined && a.dev === b.dev && a.ino === b.ino;
}
