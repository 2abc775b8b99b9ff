// What the depot daemon's handlers share: the depot, the binaries they run, the output cap. Its
// own file so that containers.ts and tracker.ts both read it without importing each other.
import type { Depot } from './layout.ts';

export interface DepotRuntime {
  readonly depot: Depot;
  /** bin/sysrunc: every container and exec goes through it (user namespace isolation). */
  readonly sysrunc: string;
  /** runc --root of the depot's containers. */
  readonly runcRoot: string;
  /** The static keep-alive init (dist/sysrunc-depot-init). */
  readonly init: string;
  /** The static per-process supervisor (dist/sysrunc-depot-supervise). */
  readonly supervisor: string;
  /** Output a process keeps on disk (both streams, the oldest dropped): passed to each supervisor. */
  readonly maxOutputBytes: number;
  readonly env: NodeJS.ProcessEnv;
}
