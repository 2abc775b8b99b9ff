// The synchronous delete inside `docker run --rm`, on one time line: the manager's syscalls
// (strace -f -tt of its pid: runc's state going by inotify, the release's umount2 and mount calls,
// the delete call's accept and its answer's write) beside the launcher's (the same strace of the
// wrapper's delete). Prints, per synchronous delete, the ms from runc's removal of its state dir to
// each landmark: the engine's overlay mounted again, the delete call's connect(), the manager's
// accept4() of it, its answer written, the launcher's exit. A private manager and dockerd.
// strace slows both sides: read the order and the gaps, not the absolute times.
//   node --import tsx bench/delete-timeline.ts [--n 5]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '5' } } });
const N = Number(values.n);

async function main(): Promise<void> {
  const mgr = await startTestManager({ name: 'delete-timeline' });
  let d: DockerDaemon | undefined;
  const dir = mkdtempSync('/var/tmp/sysrunc-delete-timeline-');
  const out = path.join(dir, 'mgr.strace');
  const tracer = spawn('strace', ['-f', '-tt', '-o', out, '-e', 'trace=umount2,mount,move_mount,fsmount,fsopen,accept4,write,read,rmdir,unlink,rename,openat', '-p', String(mgr.pid())], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    // The launcher's deletes traced too (strace -f, seccomp-filtered: only the calls named stop it).
    const wrapper = path.join(dir, 'sysrunc-traced');
    writeFileSync(wrapper, `#!/bin/sh\ncase " $* " in *" delete "*) exec strace -f -tt --seccomp-bpf -e trace=execve,connect,exit_group,wait4,rmdir,unlinkat -o ${dir}/launcher.$$ ${SYSRUNC} "$@" ;; esac\nexec ${SYSRUNC} "$@"\n`, { mode: 0o755 });
    d = await startDockerd({ name: 'delete-timeline', runtimes: { sysrunc: { path: wrapper } }, env: mgr.env });
    await ensureDockerImage(d);
    for (let i = 0; i < N; i++) await d.docker(['run', '--rm', '--runtime=sysrunc', 'bb:local', 'true']);
  } finally {
    tracer.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 500));
    await d?.stop();
    await mgr.dispose();
  }
  console.log(`traces in ${dir}`);
  console.log('state gone -> engine overlay back | connect | accept | answer | launcher exit (ms)');
  for (const row of timelines(dir, readFileSync(out, 'utf8'))) console.log(row.map((ms) => (ms === undefined ? '-' : ms.toFixed(1))).join(' | '));
}

/** "HH:MM:SS.micro" of an strace -tt line, in ms of the day. */
function at(line: string | undefined): number | undefined {
  const m = line?.match(/^\d+\s+(\d\d):(\d\d):(\d\d\.\d+) /);
  return m === null || m === undefined ? undefined : (Number(m[1]) * 60 + Number(m[2])) * 60_000 + Number(m[3]) * 1000;
}

/** Per launcher trace that made a delete call: its landmarks, relative to runc's state dir going. */
function timelines(dir: string, mgr: string): (number | undefined)[][] {
  const mgrLines = mgr.split('\n');
  const rows: (number | undefined)[][] = [];
  for (const name of readdirSync(dir).filter((n) => n.startsWith('launcher.'))) {
    const lines = readFileSync(path.join(dir, name), 'utf8').split('\n');
    const connect = at(lines.find((l) => l.includes('connect(')));
    if (connect === undefined) continue;
    const stateGone = at(lines.filter((l) => l.includes('AT_REMOVEDIR) = 0') && l.includes('unlinkat(')).at(-1));
    const exit = at(lines.filter((l) => l.includes('exit_group')).at(-1));
    if (stateGone === undefined) continue;
    const after = (re: RegExp) => mgrLines.map(at).find((t, i) => t !== undefined && t >= stateGone && re.test(mgrLines[i] ?? ''));
    const engineBack = after(/move_mount\(.*\/merged"/);
    const accept = mgrLines.map(at).find((t, i) => t !== undefined && t >= connect && /accept4\(/.test(mgrLines[i] ?? ''));
    const answer = mgrLines.map(at).find((t, i) => t !== undefined && accept !== undefined && t >= accept && /write\(\d+, "\{\\"seq\\"/.test(mgrLines[i] ?? ''));
    rows.push([engineBack, connect, accept, answer, exit].map((t) => (t === undefined ? undefined : t - stateGone)));
  }
  return rows;
}

await main();
