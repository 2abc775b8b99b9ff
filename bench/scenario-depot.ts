// (i) The depot (issue 11): starting a process in a running depot container and getting its exit
// code, against a bare `runc exec` of the same process into the same container, interleaved; and
// the memory of one supervisor per process. Runs its own sysrunc-mgr and sysrunc-depotd (names
// `dpt-bench-*`), so it shares nothing with the other scenarios.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DepotClient } from '../src/depot-api/client.ts';
import { processConfig } from '../src/depot/spec.ts';
import { startTestManager } from '../test/helpers/manager.ts';
import { sweepManager } from '../test/helpers/manager-state.ts';
import { bins, REPO_ROOT } from '../test/rig/paths.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, fmtMs, log, makeRow, mustTime, stats, type Paired } from './lib.ts';

/** Supervisors measured at once (each holding a `sleep`). */
const SUPERVISORS = 10;

function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${field === 'Pss' ? 'smaps_rollup' : 'status'}`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]);
}

export const depotScenario: Scenario = {
  key: 'depot',
  alias: 'i',
  title: '(i) depot: exec + exit code through sysrunc-depotd vs bare runc exec; supervisor memory',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const base = `/run/sysrunc-test/dpt-bench-${ctx.tag}`;
    const socket = path.join(base, 'depotd.sock');
    const runcRoot = path.join(base, 'runc');
    const id = `dpt-bench-${ctx.tag}`;
    const mgr = await startTestManager({ name: `dpt-bench-${ctx.tag}` });
    ctx.cleanup.defer('depot manager', async () => {
      await sweepManager(mgr.socket).catch(() => undefined);
      await mgr.dispose();
      rmSync(mgr.runDir, { recursive: true, force: true });
    });
    const rootfs = path.join(ctx.work, 'depot-rootfs');
    cpSync(await ctx.busyboxRootfs(), rootfs, { recursive: true, verbatimSymlinks: true });
    const logFd = openSync(path.join(ctx.work, 'depotd.log'), 'a');
    const daemon: ChildProcess = spawn(path.join(REPO_ROOT, 'bin', 'sysrunc-depotd'), ['--socket', socket, '--depot', path.join(base, 'depot'), '--runc-root', runcRoot], {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...mgr.env },
    });
    closeSync(logFd);
    ctx.cleanup.defer('sysrunc-depotd', async () => {
      if (daemon.exitCode === null) await new Promise((resolve) => (daemon.once('exit', resolve), daemon.kill('SIGTERM')));
      rmSync(base, { recursive: true, force: true });
    });
    const client = await DepotClient.connect(socket, 20_000);
    ctx.cleanup.defer('depot container', async () => {
      await client.call('destroy', { id }).catch(() => undefined);
      client.close();
    });
    const info = await client.call('create', { id, rootfs });
    log(`(i) depot container ${id} running, init pid ${info.pid}`);

    const o = { scratch: ctx.work, env: { ...process.env, ...mgr.env } };
    const bare = (): number => mustTime(bins.runc, ['--root', runcRoot, 'exec', id, 'true'], o);
    const viaDepot = async (): Promise<number> => {
      const t0 = performance.now();
      const started = await client.call('exec', { container: id, spec: { args: ['true'] } });
      const { exitCode } = await client.call('wait', { container: id, process: started.process });
      const ms = performance.now() - t0;
      if (exitCode !== 0) throw new Error(`depot exec true: exit code ${exitCode}`);
      return ms;
    };
    // For the notes: how much of the depot's added time is sysrunc's own exec path, with the same
    // process file the depot writes (with --process, the per-call binary grants the system
    // container's capabilities in it first).
    const processFile = path.join(ctx.work, 'depot-process.json');
    writeFileSync(processFile, JSON.stringify(processConfig({ args: ['true'] })));
    const viaSysrunc = (): number => mustTime(path.join(REPO_ROOT, 'bin', 'sysrunc'), ['--root', runcRoot, 'exec', '--process', processFile, id], o);
    const sysruncExec: number[] = [];
    const ctl = path.join(REPO_ROOT, 'bin', 'sysrunc-ctl');
    const viaCli = (): number => mustTime(ctl, ['depot', 'exec', id, 'true'], { ...o, env: { ...o.env, SYSRUNC_DEPOT_SOCKET: socket } });

    const api: Paired = { runc: [], sysrunc: [] };
    const cli: Paired = { runc: [], sysrunc: [] };
    const total = ctx.opts.warmup + ctx.opts.n;
    for (let i = 0; i < total; i++) {
      await checkpoint();
      const samples = [bare(), await viaDepot(), bare(), viaCli(), viaSysrunc()] as const;
      if (i < ctx.opts.warmup) continue;
      sysruncExec.push(samples[4]);
      api.runc.push(samples[0]);
      api.sysrunc.push(samples[1]);
      cli.runc.push(samples[2]);
      cli.sysrunc.push(samples[3]);
      if ((i + 1) % Math.max(1, Math.ceil(total / 4)) === 0) log(`(i) depot: ${i + 1}/${total} rounds`);
    }
    // Completed processes stay listed until destroy; the next part counts only its own.
    const sleepers = [];
    for (let i = 0; i < SUPERVISORS; i++) sleepers.push(await client.call('exec', { container: id, spec: { args: ['sleep', '1000'] } }));
    const pids = sleepers.map((s) => Number(readFileSync(path.join(base, 'depot', id, 'processes', s.process, 'supervisor.pid'), 'utf8')));
    const rss = stats(pids.map((p) => statusKb(p, 'VmRSS')));
    const pss = stats(pids.map((p) => statusKb(p, 'Pss')));
    const daemonRss = daemon.pid === undefined ? Number.NaN : statusKb(daemon.pid, 'VmRSS');
    for (const s of sleepers) await client.call('signal', { container: id, process: s.process, signal: 9 });

    const commands = { runc: `runc --root R exec ${id} true`, sysrunc: 'depot API: exec {args:[true]} + wait (one connection, in-process client)' };
    return {
      rows: [
        makeRow('(i)', 'exec true -> exit code (API)', commands, api),
        makeRow('(i)', 'exec true -> exit code (sysrunc-ctl)', { runc: commands.runc, sysrunc: `bin/sysrunc-ctl exec ${id} true (node start-up included)` }, cli),
      ],
      notes: [
        `(i) supervisor memory, ${SUPERVISORS} supervisors each holding a running sleep: VmRSS median ${rss.median} kB (max ${rss.max}), PSS median ${pss.median} kB; sysrunc-depotd VmRSS ${daemonRss} kB`,
        `(i) the depot side runs runc exec too (through bin/sysrunc, -d, under the supervisor) plus the supervisor's start and the exit-code file; bare runc exec median ${fmtMs(stats(api.runc).median)} ms, bin/sysrunc exec --process (the depot's process file; foreground, no supervisor) median ${fmtMs(stats(sysruncExec).median)} ms`,
      ],
      extra: { supervisorRssKb: rss, supervisorPssKb: pss, daemonRssKb: daemonRss },
    };
  },
};
