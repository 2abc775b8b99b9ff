// Killing a process with everything it started. A signal to the top process alone leaves its
// children running (reparented to the container's init); killing the top first would lose track of
// them. So: stop the whole tree (a stopped process cannot fork), collect it again until no new
// process appears, then SIGKILL every member. Host pids, read from /proc (field 4: the parent).
import { readdirSync, readFileSync } from 'node:fs';
import { parentOf } from './process-stat.ts';

/** `top` and its descendants now alive. */
export function processTree(top: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const parent = parentOf(Number(name));
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
  }
  const tree: number[] = [];
  const pending = parentOf(top) === undefined ? [] : [top];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    // Gone already: that is what we want.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGKILLs `top` and all its descendants; returns their pids. */
export function killProcessTree(top: number): number[] {
  const stopped = new Set<number>();
  for (;;) {
    const fresh = processTree(top).filter((pid) => !stopped.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      stopped.add(pid);
    }
  }
  for (const pid of stopped) signal(pid, 'SIGKILL');
  return [...stopped];
}

/** Whether each pid has exited (gone, or a zombie waiting for its parent). */
export function allExited(pids: readonly number[]): boolean {
  return pids.every((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state === 'Z' || state === 'X';
    } catch {
      return true;
    }
  });
}
