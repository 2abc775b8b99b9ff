// Fault points for crash tests. With SYSRUNC_TEST_FAULT=<spec>[,<spec>...] in a process's
// environment, reaching a named point does what the spec says; without the variable (always,
// outside tests) a fault point does nothing. Specs:
//   <point>         this process kills itself with SIGKILL there, exactly as a kill -9 from outside
//                   would stop it at that point (the manager mid-request, the per-call binary);
//   caller@<point>  the manager kills the process that asked for the request (the launcher that
//                   becomes runc) and its descendants with SIGKILL, and carries on: the shim
//                   killed -9 while the manager works for it.
// The points (README "Fault points"): create:allocated, create:volumes, create:mount-<n>,
// create:config-written, create:prepared (manager); create:answered (per-call binary, C client);
// write:<file name>:before-rename (any atomic file write: the temp file is written, not renamed);
// userns:cloned (the manager holds a user-namespace child: host/userns.ts);
// create:before-runc (bin/sysrunc, or the C client that execs runc), delete:after-runc (bin/sysrunc);
// delete:engine-released, delete:undone (manager);
// copy-sync-out:*, layer-sync-in:*, layer-sync-out:*, layer-move-out:*, layer-move-in:* (store volumes).
import { readFileSync } from 'node:fs';

const VAR = 'SYSRUNC_TEST_FAULT';

function wanted(): string[] {
  const value = process.env[VAR];
  return value === undefined || value === '' ? [] : value.split(',');
}

/** Kills this process with SIGKILL if the point is named; kills `caller` instead for caller@<point>. */
export function faultPoint(name: string, caller?: number): void {
  const specs = wanted();
  if (specs.length === 0) return;
  if (caller !== undefined && caller > 1 && specs.includes(`caller@${name}`)) {
    process.stderr.write(`${VAR}: killing caller pid ${caller} and its children at ${name}\n`);
    killTree(caller);
  }
  if (!specs.includes(name)) return;
  process.stderr.write(`${VAR}: killing pid ${process.pid} at ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** The tree is listed before anything is killed: a dead parent's children move to another parent. */
function killTree(pid: number): void {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...childrenOf(tree[i] as number));
  for (const p of tree) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
