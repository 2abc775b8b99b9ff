// The seed's RootfsCloner for sysrunc: a container whose overlay rootfs cannot be idmapped runs on
// a new overlay whose lower is a clone of the image layers, shifted once by the container's id
// offset, and whose upper is the container's own (shifted while it runs, reverted at every stop).
//
//   <clones>/<id>/merged   overlay(lower = image layers, upper = <clones>/<id>/upper, metacopy=on)
//   <run>/<id>/rootfs      overlay(lower = <clones>/<id>/merged, upper/work = dockerd's)
//
// Chowning the clone copies up metadata only (metacopy), so its cost grows with the number of
// files, not their size. The clone outlives stops (same container, same id range: the sticky
// allocation) and goes when the container is removed.
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { SyscallError, fromNodeError } from '../../host/libc.ts';
import { mountsUnder } from '../../host/mount.ts';
import { readdirIfExists } from '../../common/read-dir.ts';
import { readJson, writeJsonAtomic } from '../state-file.ts';
import { chownTreeByOffset, type ChownDirection, type ChownReport, type IdOffset } from './chown-tree.ts';
import { chownInProcess, type ChownRunner } from './chown-child.ts';
import { mountOverlayClone, unmountOverlayClone } from './overlay-clone.ts';

const EBUSY = 16;

/** Written once the clone is completely shifted: a later mount with the same offset skips the chown. */
const ShiftedMarker = z.object({ uid: z.number().int(), gid: z.number().int(), size: z.number().int(), lowerdirs: z.array(z.string()) });
type ShiftedMarker = z.infer<typeof ShiftedMarker>;

export interface CloneRequest {
  readonly id: string;
  /** Image layers, topmost first. */
  readonly lowerdirs: readonly string[];
  readonly offset: IdOffset;
  readonly size: number;
}

export interface MountedClone {
  readonly merged: string;
  /** The chown of the clone, when this mount had to do it (undefined: reused a shifted clone). */
  readonly chown: ChownReport | undefined;
}

export class RootfsCloner {
  private readonly trash: string;

  constructor(
    private readonly root: string,
    private readonly runChown: ChownRunner = chownInProcess,
  ) {
    // Beside the clones, on the same filesystem, so that moving a clone there is one rename.
    this.trash = `${root}.trash`;
  }

  /** Mounts the container's clone (creating it, or reusing the one kept from its last run), shifted. */
  async mountClone(req: CloneRequest): Promise<MountedClone> {
    const dir = this.dir(req.id);
    const want: ShiftedMarker = { uid: req.offset.uid, gid: req.offset.gid, size: req.size, lowerdirs: [...req.lowerdirs] };
    const marker = readJson(this.markerPath(req.id), ShiftedMarker);
    // A clone shifted for another range or image cannot be reused; one never shifted completely
    // is reused and the chown finishes it (the chown is idempotent, and resumes its own journal).
    const shifted = marker !== undefined && sameMarker(marker, want);
    if (marker !== undefined && !shifted) this.removeClone(req.id);
    const top = req.lowerdirs[0];
    if (top === undefined) throw new Error(`clone of ${req.id}: no lower layers`);
    const clone = mountOverlayClone({ id: req.id, cloneRoot: this.root, lowerdirs: req.lowerdirs, rootOwner: lstatOrThrow(top), reuse: true });
    if (shifted) return { merged: clone.merged, chown: undefined };
    try {
      const chown = await this.runChown({ root: clone.merged, offset: req.offset, journalPath: path.join(dir, 'chown-journal.json'), direction: 'shift', size: req.size });
      writeJsonAtomic(this.markerPath(req.id), want);
      return { merged: clone.merged, chown };
    } catch (err) {
      unmountOverlayClone(req.id, this.root);
      throw err;
    }
  }

  /**
   * Shifts (or reverts) the container's own upper dir in place, except the directories at `keep`
   * (paths in the rootfs): copy-mode store volumes' synced-out copies, which the container never
   * sees (its volume is mounted over them) and which must keep host-root ownership and their ctimes.
   */
  chownUpper(id: string, upperdir: string, offset: IdOffset, size: number, direction: ChownDirection, keep: readonly string[] = []): ChownReport {
    return chownTreeByOffset(upperdir, offset, { journalPath: path.join(this.root, `${id}.upper-journal.json`), direction, range: { size }, exclude: keep });
  }

  /** Where the container's clone is mounted (the lower layer of its rootfs overlay). */
  mergedPath(id: string): string {
    return path.join(this.dir(id), 'merged');
  }

  /** At stop: the clone stays on disk, shifted, for the next start. */
  unmountClone(id: string): void {
    unmountOverlayClone(id, this.root);
  }

  /**
   * When the container is removed. A missing clone is fine. The clone is unmounted and moved aside
   * at once; deleting its tens of thousands of copied-up entries happens in a child process, so the
   * manager's requests do not wait for it (synchronous fs calls would block its event loop).
   */
  removeClone(id: string): void {
    const dir = this.dir(id);
    unmountOverlayClone(id, this.root);
    const busy = mountsUnder(dir);
    if (busy.length > 0) throw new SyscallError('rmdir', dir, EBUSY, `still mounted below it: ${busy.join(', ')}`);
    mkdirSync(this.trash, { recursive: true, mode: 0o700 });
    const aside = path.join(this.trash, `${id}.${Date.now()}`);
    try {
      renameSync(dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err, 'rename', dir);
    }
    this.emptyTrash();
    rmSync(this.markerPath(id), { force: true });
    rmSync(path.join(this.root, `${id}.upper-journal.json`), { force: true });
  }

  /** Deletes what removeClone moved aside (also what a manager that stopped meanwhile left there). */
  emptyTrash(): void {
    for (const name of readdirIfExists(this.trash)) {
      const child = spawn('rm', ['-rf', '--one-file-system', '--', path.join(this.trash, name)], { stdio: 'ignore' });
      child.on('error', () => undefined);
    }
  }

  /** Ids of the containers that have a clone directory. */
  list(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fromNodeError(err, 'readdir', this.root);
    }
  }

  private dir(id: string): string {
    return path.join(this.root, id);
  }

  private markerPath(id: string): string {
    // Beside the clone directory, not in it: removeClone moves the directory aside wholesale.
    return path.join(this.root, `${id}.shifted.json`);
  }
}

function sameMarker(a: ShiftedMarker, b: ShiftedMarker): boolean {
  return a.uid === b.uid && a.gid === b.gid && a.size === b.size && a.lowerdirs.join('\0') === b.lowerdirs.join('\0');
}

function lstatOrThrow(p: string) {
  try {
    return lstatSync(p);
  } catch (err) {
    throw fromNodeError(err, 'lstat', p);
  }
}
