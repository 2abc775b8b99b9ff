// shiftfs marks (the pre-idmapped-mount way of shifting ownership, Ubuntu
// kernels only): detection, and reference-counted marks shared by containers.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { fromNodeError, libc, sysFail } from '../../host/libc.ts';
import { unmount } from '../../host/mount.ts';

export interface ShiftfsDetection {
  available: boolean;
  reason: string;
  /** The module file when shiftfs is built but not loaded. */
  module?: string;
}

export interface DetectShiftfsOptions {
  procFilesystems?: string;
  modulesDir?: string;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw fromNodeError(err, 'open', file);
  }
}

/** Finds shiftfs.ko(.xz|.zst|.gz) in a modules.dep, or shiftfs in modules.builtin. */
function findModule(modulesDir: string): string | undefined {
  const dep = readText(path.join(modulesDir, 'modules.dep')) ?? '';
  for (const line of dep.split('\n')) {
    const file = line.slice(0, line.indexOf(':'));
    if (/(^|\/)shiftfs\.ko(\.(xz|zst|gz))?$/.test(file)) return path.join(modulesDir, file);
  }
  return undefined;
}

/**
 * Whether shiftfs can be mounted now. Only a registered filesystem counts as
 * available: loading a module is a host change the caller decides on.
 */
export function detectShiftfs(opts: DetectShiftfsOptions = {}): ShiftfsDetection {
  const procFs = opts.procFilesystems ?? '/proc/filesystems';
  const text = readText(procFs) ?? '';
  if (text.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'shiftfs')) {
    return { available: true, reason: `shiftfs is registered in ${procFs}` };
  }
  const modulesDir = opts.modulesDir ?? path.join('/lib/modules', release());
  const notRegistered = `shiftfs is not registered in ${procFs}`;
  if (!existsSync(modulesDir)) {
    return { available: false, reason: `${notRegistered} and ${modulesDir} does not exist, so no module can be loaded (shiftfs is out of tree, shipped only with Ubuntu kernels)` };
  }
  const builtin = readText(path.join(modulesDir, 'modules.builtin')) ?? '';
  if (/(^|\/)shiftfs\.ko$/m.test(builtin)) {
    return { available: false, reason: `${notRegistered} although ${modulesDir}/modules.builtin lists it` };
  }
  const module = findModule(modulesDir);
  if (module) return { available: false, reason: `${notRegistered}; module ${module} exists but is not loaded (modprobe shiftfs)`, module };
  return { available: false, reason: `${notRegistered} and ${modulesDir}/modules.dep has no shiftfs module (shiftfs is out of tree, shipped only with Ubuntu kernels)` };
}

export interface ShiftfsMountOps {
  mountMark(path: string): void;
  unmountMark(path: string): void;
}

/** `mount -t shiftfs -o mark <path> <path>`; refuses to build when shiftfs is not available. */
export function realShiftfsOps(detection: ShiftfsDetection = detectShiftfs()): ShiftfsMountOps {
  if (!detection.available) throw new Error(`shiftfs unavailable: ${detection.reason}`);
  return {
    mountMark(p) {
      if (libc().mount(p, p, 'shiftfs', 0, 'mark') === -1) throw sysFail('mount shiftfs mark', p);
    },
    unmountMark(p) {
      unmount(p);
    },
  };
}

const StateSchema = z.object({
  version: z.literal(1),
  /** mark path -> ids of the containers holding it */
  marks: z.record(z.string(), z.array(z.string().min(1)).min(1)),
});

export type ShiftfsMarksState = z.infer<typeof StateSchema>;

export interface UnmarkFailure {
  path: string;
  error: unknown;
}

/**
 * Reference-counted shiftfs marks: a path is mounted when its first holder
 * marks it and unmounted when its last holder unmarks it.
 */
export class ShiftfsMarks {
  private readonly holders = new Map<string, Set<string>>();

  constructor(private readonly ops: ShiftfsMountOps) {}

  /** Marks paths for id; returns the (absolute) paths now marked. All or nothing. */
  mark(id: string, paths: string[]): string[] {
    const wanted = [...new Set(paths.map((p) => path.resolve(p)))];
    const mounted: string[] = [];
    const joined: string[] = [];
    try {
      for (const p of wanted) {
        const set = this.holders.get(p);
        if (set?.has(id)) continue;
        if (!set) {
          this.ops.mountMark(p);
          mounted.push(p);
          this.holders.set(p, new Set([id]));
        } else {
          set.add(id);
        }
        joined.push(p);
      }
    } catch (err) {
      for (const p of joined) this.holders.get(p)?.delete(id);
      for (const p of mounted.reverse()) {
        this.holders.delete(p);
        try {
          this.ops.unmountMark(p);
        } catch {
          // the mark failure is the error to report
        }
      }
      throw err;
    }
    return wanted;
  }

  /**
   * Drops id's hold on paths (default: all it holds); unknown ids and paths are
   * no-ops. Every path is tried; the first unmount failure is thrown at the end
   * and leaves that path held by id.
   */
  unmark(id: string, paths?: string[]): void {
    const targets = paths ? paths.map((p) => path.resolve(p)) : this.marksOf(id);
    let first: unknown;
    for (const p of targets) {
      const set = this.holders.get(p);
      if (!set?.has(id)) continue;
      if (set.size > 1) {
        set.delete(id);
        continue;
      }
      try {
        this.ops.unmountMark(p);
        this.holders.delete(p);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  /** Unmounts every mark once, best effort, and forgets all holders; returns what failed. */
  unmarkAll(): UnmarkFailure[] {
    const failures: UnmarkFailure[] = [];
    for (const p of [...this.holders.keys()].reverse()) {
      try {
        this.ops.unmountMark(p);
      } catch (error) {
        failures.push({ path: p, error });
      }
    }
    this.holders.clear();
    return failures;
  }

  marksOf(id: string): string[] {
    return [...this.holders].filter(([, set]) => set.has(id)).map(([p]) => p);
  }

  holdersOf(p: string): string[] {
    return [...(this.holders.get(path.resolve(p)) ?? [])].sort();
  }

  toJSON(): ShiftfsMarksState {
    const marks: Record<string, string[]> = {};
    for (const [p, set] of [...this.holders].sort(([a], [b]) => a.localeCompare(b))) marks[p] = [...set].sort();
    return { version: 1, marks };
  }

  /** Restores the holders of marks that are still mounted (nothing is mounted here). */
  static fromJSON(state: unknown, ops: ShiftfsMountOps): ShiftfsMarks {
    const parsed = StateSchema.safeParse(state);
    if (!parsed.success) {
      throw new Error(`invalid shiftfs marks state: ${parsed.error.issues.map((i) => `${i.path.join('.') || '<root>'}: ${i.message}`).join('; ')}`);
    }
    const marks = new ShiftfsMarks(ops);
    for (const [p, ids] of Object.entries(parsed.data.marks)) marks.holders.set(path.resolve(p), new Set(ids));
    return marks;
  }
}
