// What the manager's request handlers (service.ts) work with: its stores, the host executor, the
// allocator, and the hooks the daemon gives them (the request queue, the container watch).
import type { Logger } from 'pino';
import type { PreparedBundles } from './prepared-bundles.ts';
import type { SubidAllocator } from './subid-alloc.ts';
import type { Registry } from './registry.ts';
import type { HostExecutor } from './host-executor.ts';
import type { VolumeManager } from './volumes/volume-manager.ts';
import type { RuntimeFeatures } from '../spec-transform/runtime-features.ts';
import type { LxcfsSupervisor } from './lxcfs/supervisor.ts';
import type { OwnershipHost } from './ownership/decide.ts';

export interface ServiceOptions {
  readonly runBase: string;
  readonly allocator: SubidAllocator;
  readonly registry: Registry;
  readonly executor: HostExecutor;
  readonly volumes: VolumeManager;
  readonly log: Logger;
  readonly defaultSize: number;
  /** The most ids one container may ask for (sysrunc-mgr --max-subid-size), whatever the source. */
  readonly maxSize?: number;
  readonly ownership: OwnershipHost;
  /** Runs fn outside the manager's request queue (see SerialQueue.unlocked); the caller holds it. */
  readonly unlocked: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * Queues fn as a task of its own, after the request running now (the request queue: a release's
   * run dir part, after the answer to the delete); resolves when fn has run. Unset (unit tests): a
   * release does all its parts before it answers.
   */
  readonly afterRequest?: (fn: () => Promise<void>) => Promise<void>;
  readonly bundles: PreparedBundles;
  /** bin/sysrunc-delegate-cgroups, the createRuntime hook of system containers. */
  readonly hookBinary: string;
  /** Told of every container prepared and released, to see it gone as soon as runc is done. */
  readonly tracker?: ContainerTracker;
  /** sysrunc's lxcfs (none: a manager without it, as in unit tests). */
  readonly lxcfs?: LxcfsSupervisor;
  /** What the real runc does itself (none: nothing, as runc 1.1). */
  readonly runtimeFeatures?: RuntimeFeatures;
}

/** Watches containers so that the manager releases them without being asked (container-watch.ts). */
export interface ContainerTracker {
  track(record: { id: string; runtimeRoot: string; shimPid: number; shimStartTime: string }): void;
  untrack(id: string): void;
  /** Whether it sees the container go by itself (then a create need not check on it). */
  covers?(id: string): boolean;
}

/** Below the run base: one dir per container, traversable by that container's root only. */
export const RUN_DIRS = 'containers';
