// The manager's record of every container it prepared: what was allocated and which host actions
// were started for it, so that delete, a crashed shim or a restarted manager can undo them. One file
// per container under <state>/containers/, replaced atomically on every change.
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readJson, writeJsonAtomic } from './state-file.ts';
import { HostAction, IdMapping, OwnershipMode } from '../manager-api/v1.ts';
import type { SubidAllocationRecord } from './subid-alloc.ts';

export const ContainerRecord = z.object({
  version: z.literal(1),
  id: z.string(),
  runtimeRoot: z.string(),
  bundle: z.string(),
  shimPid: z.number().int(),
  shimStartTime: z.string(),
  createdAt: z.string(),
  /** Whether the subid allocator holds a range for this container (under its id). */
  allocated: z.boolean(),
  /**
   * It shares the user namespace, and so the range, of another container: the allocator's key of
   * that range (the container that allocated it). The range stays while any record names it.
   */
  sharedRange: z.optional(z.string()),
  uidMappings: z.array(IdMapping),
  gidMappings: z.array(IdMapping),
  runDir: z.string(),
  /** runc runs a config the manager wrote into a bundle of its own (absent: sysrunc < 0.2 rewrote the caller's). */
  preparedBundle: z.optional(z.boolean()),
  /**
   * Written before the actions are carried out (write-ahead): an action listed here may or may not
   * have happened, so every undo is idempotent.
   */
  actions: z.array(HostAction),
  /** Store volumes: where to sync them out to, and whether Docker removes the container on exit. */
  volumes: z.optional(z.object({ rootfs: z.string(), autoRemove: z.boolean(), upperdir: z.optional(z.string()) })),
  /**
   * Deleted by runc but kept by the manager: its store volumes (and so its id range, which owns
   * their content) live on until the container itself is removed, i.e. its rootfs is gone.
   */
  stopped: z.optional(z.boolean()),
  /** The ownership mode the manager chose, and why. */
  ownership: z.optional(z.object({ mode: OwnershipMode, reason: z.string() })),
  /** A rootfs clone (ownership mode clone) kept across stops until the upper dir goes (docker rm). */
  clone: z.optional(z.object({ upperdir: z.string(), autoRemove: z.boolean() })),
});
export type ContainerRecord = z.infer<typeof ContainerRecord>;

/** The allocator key of the range a record uses, if any. */
export function rangeKeyOf(record: ContainerRecord): string | undefined {
  return record.allocated ? record.id : record.sharedRange;
}

/** The range each record holds, under its allocator key (a range several records share, once). */
export function heldRanges(records: readonly ContainerRecord[]): SubidAllocationRecord[] {
  const held = new Map<string, SubidAllocationRecord>();
  for (const record of records) {
    const key = rangeKeyOf(record);
    const uid = record.uidMappings[0];
    const gid = record.gidMappings[0];
    if (key === undefined || uid === undefined || gid === undefined || held.has(key)) continue;
    held.set(key, { id: key, uid: uid.hostID, gid: gid.hostID, size: uid.size });
  }
  return [...held.values()];
}

export function outlivesReboot(record: ContainerRecord): boolean {
  return record.stopped === true || record.volumes !== undefined || record.clone !== undefined || record.actions.some((a) => a.kind === 'chown-tree' || a.kind === 'rootfs-clone');
}

export class Registry {
  private readonly dir: string;
  private readonly records = new Map<string, ContainerRecord>();

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'containers');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.dir)) {
      // Every <id>.json, ids starting with "." included (valid for runc); temp files end in .tmp.
      if (!name.endsWith('.json')) continue;
      const record = readJson(path.join(this.dir, name), ContainerRecord);
      if (record !== undefined) this.records.set(record.id, record);
    }
  }

  get(id: string): ContainerRecord | undefined {
    return this.records.get(id);
  }

  all(): ContainerRecord[] {
    return [...this.records.values()];
  }

  /**
   * Durable (fsynced) only when the record must outlive a reboot: something it records stays on
   * disk (store volumes, a clone, chowned trees) or it is a stopped container's. A running
   * container's mounts and processes end with the machine, and the page cache survives the
   * manager's own crash: the fsyncs were ~3 ms of every create.
   */
  save(record: ContainerRecord): { durable: boolean } {
    const durable = outlivesReboot(record);
    writeJsonAtomic(this.file(record.id), record, { durable });
    this.records.set(record.id, record);
    return { durable };
  }

  /** Held in memory only, until the next save (a prepare's apply saves it before any host action). */
  remember(record: ContainerRecord): void {
    this.records.set(record.id, record);
  }

  remove(id: string): void {
    try {
      unlinkSync(this.file(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.records.delete(id);
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }
}
