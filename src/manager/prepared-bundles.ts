// What the manager leaves for runc and for bin/sysrunc, per container, on tmpfs:
//   <runBase>/bundles/<id>/config.json  the transformed config, in a bundle of the manager's own
//                                       (the caller's bundle is never written to);
//   <hintsDir>/<id>                     one JSON line bin/sysrunc reads with sh builtins, to choose
//                                       its path for delete and exec without starting anything.
// hintsDir is <dir of the manager socket>/hints: the one place bin/sysrunc can find from the
// socket path alone.
import { mkdirSync, readFileSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { isAtomicTempFile, writeFileAtomic } from '../common/atomic-file.ts';
import { readdirIfExists } from '../common/read-dir.ts';

/** How bin/sysrunc handles a container's delete and exec (see bin/sysrunc). */
export interface ContainerHint {
  /** sync: runc delete, then wait for the manager's cleanup (store volumes sync out, chowns revert). */
  readonly delete: 'sync' | 'async';
  /** grant-capabilities: exec'd processes get the system container's capabilities. */
  readonly exec: 'grant-capabilities' | 'as-is';
}

export class PreparedBundles {
  readonly bundlesDir: string;
  readonly hintsDir: string;

  constructor(runBase: string, socketPath: string) {
    this.bundlesDir = path.join(runBase, 'bundles');
    this.hintsDir = path.join(path.dirname(socketPath), 'hints');
    mkdirSync(this.bundlesDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.hintsDir, { recursive: true, mode: 0o755 });
  }

  bundleDir(id: string): string {
    return path.join(this.bundlesDir, id);
  }

  /** Writes the prepared config.json (atomically: a crash leaves the old one or the new one). */
  writeConfig(id: string, text: string): string {
    const dir = this.bundleDir(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // tmpfs, and meaningless after a reboot: no fsync.
    writeFileAtomic(path.join(dir, 'config.json'), text, { mode: 0o600, durable: false });
    return dir;
  }

  /** A hint only where bin/sysrunc must do more than exec runc; none is the fast default. */
  writeHint(id: string, hint: ContainerHint): void {
    const file = path.join(this.hintsDir, id);
    if (hint.delete === 'async' && hint.exec === 'as-is') {
      removeFile(file);
      return;
    }
    writeFileAtomic(file, `${JSON.stringify(hint)}\n`, { mode: 0o644, durable: false });
  }

  /**
   * The container's delete has nothing left to wait for (the engine's overlay went back at its
   * exit, exit-hand-back.ts): runc's delete alone, and the manager releases the rest when it sees
   * the container gone. A delete already past its read of the hint still asks, which is as good.
   */
  deleteWaitsNoMore(id: string): void {
    const file = path.join(this.hintsDir, id);
    let hint: unknown;
    try {
      hint = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return;
    }
    const { delete: del, exec } = typeof hint === 'object' && hint !== null ? (hint as Partial<ContainerHint>) : {};
    if (del === 'sync' && (exec === 'grant-capabilities' || exec === 'as-is')) this.writeHint(id, { delete: 'async', exec });
  }

  /** The hint alone: bin/sysrunc then treats the container as one with nothing to wait for. */
  removeHint(id: string): void {
    removeFile(path.join(this.hintsDir, id));
  }

  remove(id: string): void {
    this.removeHint(id);
    // The bundle holds config.json alone: two calls, not a recursive walk; anything else left in
    // it (a temp file of a crashed write) gets the walk.
    const dir = this.bundleDir(id);
    removeFile(path.join(dir, 'config.json'));
    try {
      rmdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'ENOTEMPTY') throw err;
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Ids that have a bundle or a hint (for reconciliation). */
  ids(): Set<string> {
    const ids = new Set<string>();
    for (const name of readdirIfExists(this.bundlesDir)) ids.add(name);
    for (const name of readdirIfExists(this.hintsDir)) if (!isAtomicTempFile(name)) ids.add(name);
    return ids;
  }
}

function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
