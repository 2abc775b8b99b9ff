// Why a caller cannot use the manager, when the reason is who the caller is rather than whether a
// manager is running. The manager serves host root only (a root-owned socket, mode 0600, peer uid
// checked): it mounts and chowns as host root for its containers. A rootless engine (rootless
// podman, rootless Docker) runs the runtime as root of a user namespace that does not map host
// root. Nested use (an engine inside a system container, talking to a manager there) is root of a
// user namespace too, so the namespace alone does not tell them apart; the owner of the manager's
// directory does: under a rootless engine it is host root, which that namespace shows as the
// overflow uid (the kernel's stand-in for an unmapped id).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface CallerFacts {
  /** The caller's effective uid in its own user namespace. */
  readonly euid: number;
  /** The owner, as the caller sees it, of the nearest existing directory above the socket. */
  readonly socketDirOwner: number;
  /** The kernel's overflow uid (/proc/sys/kernel/overflowuid): what unmapped owners show as. */
  readonly overflowUid: number;
}

/** Why this caller may not use the manager at all, or undefined when it may (or cannot be told). */
export function callerRefusal(socketPath: string, facts: CallerFacts): string | undefined {
  if (facts.euid !== 0) {
    return `sysrunc-mgr at ${socketPath} serves root only and this caller is uid ${facts.euid}: run the engine as root`;
  }
  if (facts.socketDirOwner === facts.overflowUid) {
    return (
      `sysrunc-mgr at ${socketPath} serves host root only and this caller is root of a user namespace without it ` +
      '(a rootless engine): rootless podman and rootless Docker are not supported; run the engine as root'
    );
  }
  return undefined;
}

/** The facts of this process, or undefined when they cannot be read (then no refusal is claimed). */
export function callerFacts(socketPath: string): CallerFacts | undefined {
  if (typeof process.geteuid !== 'function') return undefined;
  try {
    let dir = path.dirname(path.resolve(socketPath));
    let owner: number | undefined;
    for (;;) {
      try {
        owner = statSync(dir).uid;
        break;
      } catch {
        if (dir === '/') return undefined;
        dir = path.dirname(dir);
      }
    }
    const overflowUid = Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim());
    if (!Number.isInteger(overflowUid)) return undefined;
    return { euid: process.geteuid(), socketDirOwner: owner, overflowUid };
  } catch {
    return undefined;
  }
}
