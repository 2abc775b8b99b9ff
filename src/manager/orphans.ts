// A manager killed -9 while it held a user-namespace child (host/userns.ts: a clone that shares its
// fd table, parked in pause() for the microseconds it takes to write the id maps) leaves that child
// behind, and with it every fd the manager had: the listening socket, so a new manager is refused
// ("another sysrunc-mgr is listening") and connects hang unanswered, and the connections of requests
// in flight, whose callers never see them end. A new manager kills such holders before it checks
// for a live one: processes holding a listening socket bound to its path, orphaned (parent pid 1),
// in a user namespace other than its own. A live manager is none of these.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { parentOf } from '../host/process-stat.ts';

/** Kills the orphaned holders of `socketPath`'s listening sockets and waits (bounded) until they are gone; returns their pids. */
export async function killOrphanedSocketHolders(socketPath: string): Promise<number[]> {
  const inodes = listeningInodes(socketPath);
  if (inodes.size === 0) return [];
  const ownUserns = linkOf('/proc/self/ns/user');
  const killed: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    if (!holdsAny(pid, inodes) || parentOf(pid) !== 1) continue;
    const userns = linkOf(`/proc/${pid}/ns/user`);
    if (userns === undefined || userns === ownUserns) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  // SIGKILL is delivered at once, but the fds close only as the process exits.
  for (let waited = 0; waited < 2000 && killed.some((pid) => !hasExited(pid)); waited += 10) await new Promise((r) => setTimeout(r, 10));
  return killed;
}

/** Gone, or a zombie (its fds are closed). */
function hasExited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** Inodes of unix sockets bound to the path (/proc/net/unix: Num RefCount Protocol Flags Type St Inode Path). */
function listeningInodes(socketPath: string): Set<string> {
  const out = new Set<string>();
  let text: string;
  try {
    text = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[7] === socketPath && f[6] !== undefined) out.add(f[6]);
  }
  return out;
}

function holdsAny(pid: number, inodes: ReadonlySet<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    const m = /^socket:\[(\d+)\]$/.exec(linkOf(`/proc/${pid}/fd/${fd}`) ?? '');
    if (m?.[1] !== undefined && inodes.has(m[1])) return true;
  }
  return false;
}

function linkOf(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
