// Sees containers go without being told: runc's delete removes <runtime root>/<id> (inotify, through
// fs.watch on each runtime root), and a create that dies before runc has the container leaves no
// state behind at all, which only its caller's exit shows; nor does a `runc run` in the foreground,
// which removes the state a moment before it exits (the caller is polled while it runs without state).
// Either way the manager is asked to release the container; the periodic sweep stays the backstop
// for anything missed (a watch that failed, a manager restarted in between).
// It also sees a container's processes end, before runc's delete: once runc has the container, its
// init process is watched (a pidfd), where the container made its own pid and mount namespaces.
import { existsSync, mkdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { processIsAlive, type KnownProcess } from './liveness.ts';
import { readRuncInit } from '../oci/runtime-state.ts';
import { ProcessExitWatch } from '../host/process-exit-watch.ts';
import type { ContainerTracker } from './service-options.ts';

interface Tracked {
  readonly runtimeRoot: string;
  readonly shimPid: number;
  readonly shimStartTime: string;
  /** No runc state (not written yet, or removed already) while its caller runs: the caller's exit decides. */
  pending: boolean;
  /** Its init process was looked at (watched, or found not to be worth watching). */
  initSeen: boolean;
  /** The init process watched, if it is. */
  init?: KnownProcess;
}

export interface ContainerWatchOptions {
  /** Asked to release the container if it is gone (it checks again; a false alarm costs a stat). */
  readonly maybeGone: (id: string) => void;
  readonly log: Logger;
  /** How often pending creates' callers are looked at, in ms. */
  readonly pollMs?: number;
  /**
   * Told when the init process of a container runc has, in pid and mount namespaces of its own,
   * exits: none of its processes is left (unset: inits are not watched).
   */
  readonly exited?: (id: string, init: KnownProcess) => void;
}

export class ContainerWatch implements ContainerTracker {
  private readonly tracked = new Map<string, Tracked>();
  private readonly watchers = new Map<string, FSWatcher>();
  private poller: NodeJS.Timeout | undefined;
  private readonly inits: ProcessExitWatch | undefined;

  constructor(private readonly o: ContainerWatchOptions) {
    const exited = o.exited;
    this.inits = exited && new ProcessExitWatch((id) => {
      const init = this.tracked.get(id)?.init;
      if (init !== undefined) exited(id, init);
    });
  }

  track(record: { id: string; runtimeRoot: string; shimPid: number; shimStartTime: string }): void {
    this.inits?.unwatch(record.id);
    const pending = !existsSync(path.join(record.runtimeRoot, record.id, 'state.json'));
    const t: Tracked = { runtimeRoot: record.runtimeRoot, shimPid: record.shimPid, shimStartTime: record.shimStartTime, pending, initSeen: false };
    this.tracked.set(record.id, t);
    this.watchRoot(record.runtimeRoot);
    if (pending) this.startPolling();
    else this.watchInit(record.id, t);
  }

  untrack(id: string): void {
    this.tracked.delete(id);
    this.inits?.unwatch(id);
  }

  /** Tracked, with its runtime root watched: its going is seen (inotify, or the caller's exit). */
  covers(id: string): boolean {
    const t = this.tracked.get(id);
    return t !== undefined && this.watchers.has(t.runtimeRoot);
  }

  close(): void {
    this.inits?.close();
    if (this.poller !== undefined) clearTimeout(this.poller);
    this.poller = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private watchRoot(root: string): void {
    if (this.watchers.has(root)) return;
    try {
      // runc makes its root on first use, 0700 as here; watching needs it to exist already.
      mkdirSync(root, { recursive: true, mode: 0o700 });
      const watcher = watch(root, { persistent: false }, (_event, name) => {
        const id = name?.toString();
        const t = id === undefined ? undefined : this.tracked.get(id);
        if (id !== undefined && t !== undefined && t.runtimeRoot === root) this.check(id, t);
      });
      watcher.on('error', (err) => {
        this.o.log.warn({ root, err: err.message }, 'runtime root watch failed; the periodic sweep covers its containers');
        watcher.close();
        this.watchers.delete(root);
      });
      this.watchers.set(root, watcher);
    } catch (err) {
      this.o.log.warn({ root, err: (err as Error).message }, 'cannot watch runtime root; the periodic sweep covers its containers');
    }
  }

  private check(id: string, t: Tracked): void {
    if (existsSync(path.join(t.runtimeRoot, id, 'state.json'))) {
      t.pending = false;
      this.watchInit(id, t);
      return;
    }
    // No state, but its caller still runs: a create not at runc yet, or a runc that removes the
    // state before it exits (`runc run` in the foreground, a create runc failed). The manager
    // releases nothing while that process runs, so it is polled until it exits; released then.
    if (processIsAlive(t.shimPid, t.shimStartTime)) {
      t.pending = true;
      this.startPolling();
      return;
    }
    t.pending = false;
    this.o.maybeGone(id);
  }

  /** Once runc has the container: its init is watched if, once it exits, nothing of the container is left running. */
  private watchInit(id: string, t: Tracked): void {
    if (this.inits === undefined || t.initSeen) return;
    t.initSeen = true;
    const init = readRuncInit(t.runtimeRoot, id);
    const startTime = init?.startTime;
    if (init === undefined || startTime === undefined || !init.ownPidAndMountNamespaces) return;
    try {
      t.init = { pid: init.pid, startTime };
      this.inits.watch(id, init.pid, () => processIsAlive(init.pid, startTime));
    } catch (err) {
      this.o.log.warn({ id, pid: init.pid, err: (err as Error).message }, "cannot watch the container's init process; what its exit would undo early waits for runc's delete");
    }
  }

  private startPolling(pending = 1): void {
    if (this.poller !== undefined) return;
    this.poller = setTimeout(() => {
      let still = 0;
      for (const [id, t] of this.tracked) {
        if (!t.pending) continue;
        this.check(id, t);
        if (t.pending) still++;
      }
      // Cleared only now: check() asks for polling too, which must not start a second timer.
      this.poller = undefined;
      if (still > 0) this.startPolling(still);
    }, pollDelayMs(this.o.pollMs ?? 20, pending));
    this.poller.unref();
  }
}

/**
 * The time between two looks at the pending creates: each look checks every one of them (a stat,
 * a /proc read), so in a burst of N creates a fixed 20 ms made the manager's one thread do 50 x N
 * checks a second while it should be preparing; spaced 1 ms per pending create, a burst costs a
 * bounded share of it. A create that died is released that much later (never before its caller exits).
 */
export function pollDelayMs(baseMs: number, pending: number): number {
  return Math.max(baseMs, pending);
}
