// Carries out and undoes host actions for the manager, through the syscall layer in src/host.
// Every undo is idempotent: it may run for an action that was recorded but never completed.
import { closeSync, lstatSync, mkdirSync, openSync, rmdirSync, unlinkSync, chownSync } from 'node:fs';
import path from 'node:path';
import type { HostAction, IdMapping } from '../manager-api/v1.ts';
import { idmappedBindMount, isMountPoint, makePrivate, unmount } from '../host/mount.ts';
import { mountFs, type FsParam } from '../host/fsmount.ts';
import { createUserNamespaceFd } from '../host/userns.ts';

export interface ContainerContext {
  readonly id: string;
  readonly runDir: string;
  readonly uidMappings: readonly IdMapping[];
  readonly gidMappings: readonly IdMapping[];
}

export class HostActionError extends Error {
  override readonly name = 'HostActionError';
}

export class HostExecutor {
  /** One user-namespace fd per container, carrying its mapping for idmapped mounts. */
  private readonly usernsFds = new Map<string, number>();

  perform(ctx: ContainerContext, action: HostAction): void {
    switch (action.kind) {
      case 'idmapped-mount':
        return this.idmappedMount(ctx, action);
      case 'overlay-mount':
        return overlayMount(ctx, action);
    }
  }

  undo(ctx: ContainerContext, action: HostAction): void {
    switch (action.kind) {
      case 'idmapped-mount':
      case 'overlay-mount':
        return undoMountTarget(ctx, action.target);
    }
  }

  /** Drops what the executor holds for a container (its user-namespace fds). */
  forget(id: string): void {
    for (const key of [id, `${id}/mounter`]) {
      const fd = this.usernsFds.get(key);
      if (fd !== undefined) closeSync(fd);
      this.usernsFds.delete(key);
    }
  }

  private idmappedMount(ctx: ContainerContext, action: Extract<HostAction, { kind: 'idmapped-mount' }>): void {
    assertInside(ctx.runDir, action.target);
    let sourceStat;
    try {
      sourceStat = lstatSync(action.source);
    } catch (err) {
      throw new HostActionError(`idmapped mount of ${action.source}: lstat: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (sourceStat.isSymbolicLink()) {
      throw new HostActionError(`idmapped mount of ${action.source}: source is a symlink; refusing to follow it`);
    }
    undoMountTarget(ctx, action.target);
    makeParents(ctx, path.dirname(action.target));
    if (sourceStat.isDirectory()) mkdirSync(action.target, { mode: 0o700 });
    else closeSync(openSync(action.target, 'wx', 0o600));
    idmappedBindMount(action.source, action.target, this.usernsFd(ctx, action.mounterWritable === true), { recursive: action.recursive });
  }

  private usernsFd(ctx: ContainerContext, mounterWritable: boolean): number {
    const key = mounterWritable ? `${ctx.id}/mounter` : ctx.id;
    let fd = this.usernsFds.get(key);
    if (fd === undefined) {
      const uid = mounterWritable ? withHostRootSpare(ctx.uidMappings) : ctx.uidMappings;
      const gid = mounterWritable ? withHostRootSpare(ctx.gidMappings) : ctx.gidMappings;
      fd = createUserNamespaceFd(uid, gid);
      this.usernsFds.set(key, fd);
    }
    return fd;
  }
}

/** The mapping plus host id 0 at the first id above every container id (on disk: overlay internals). */
export function withHostRootSpare(mappings: readonly IdMapping[]): IdMapping[] {
  const spare = Math.max(...mappings.map((m) => m.containerID + m.size));
  return [...mappings, { containerID: spare, hostID: 0, size: 1 }];
}

function overlayMount(ctx: ContainerContext, action: Extract<HostAction, { kind: 'overlay-mount' }>): void {
  assertInside(ctx.runDir, action.target);
  for (const dir of [...action.lowerdirs, action.upperdir, action.workdir]) {
    if (dir !== undefined) assertInside(ctx.runDir, dir);
  }
  undoMountTarget(ctx, action.target);
  makeParents(ctx, path.dirname(action.target));
  mkdirSync(action.target, { mode: 0o700 });
  const params: FsParam[] = action.lowerdirs.map((dir) => ({ key: 'lowerdir+', value: dir }));
  if (action.upperdir !== undefined) params.push({ key: 'upperdir', value: action.upperdir });
  if (action.workdir !== undefined) params.push({ key: 'workdir', value: action.workdir });
  for (const [key, value] of Object.entries(action.options)) params.push({ key, value });
  mountFs('overlay', params, action.target);
  makePrivate(action.target);
}

/** Unmounts whatever is stacked on the target and removes it; never recursive. */
export function undoMountTarget(ctx: ContainerContext, target: string): void {
  assertInside(ctx.runDir, target);
  while (isMountPoint(target)) unmount(target, { detach: true });
  let stat;
  try {
    stat = lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (stat.isDirectory()) rmdirSync(target);
  else unlinkSync(target);
}

/** Intermediate dirs under the run dir belong to the container's root so runc can traverse them. */
function makeParents(ctx: ContainerContext, dir: string): void {
  if (dir === ctx.runDir) return;
  assertInside(ctx.runDir, dir);
  makeParents(ctx, path.dirname(dir));
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  const root = containerRoot(ctx);
  chownSync(dir, root.uid, root.gid);
}

export function containerRoot(ctx: Pick<ContainerContext, 'uidMappings' | 'gidMappings'>): { uid: number; gid: number } {
  const uid = ctx.uidMappings.find((m) => m.containerID === 0)?.hostID;
  const gid = ctx.gidMappings.find((m) => m.containerID === 0)?.hostID;
  if (uid === undefined || gid === undefined) throw new HostActionError('the user namespace does not map container root');
  return { uid, gid };
}

function assertInside(dir: string, target: string): void {
  const rel = path.relative(dir, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new HostActionError(`host action target ${target} is outside the container's run dir ${dir}`);
  }
}
