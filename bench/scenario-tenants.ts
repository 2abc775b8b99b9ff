// (j) The tenant container service (issue 10): Run until the entrypoint runs, and Delete, through
// sysrunc-tenantd (in-process API client; every container through sysrunc) against containerd's own
// `ctr run -d` / `ctr task kill` + `ctr task rm` + `ctr rm` of the same rootfs with plain runc,
// interleaved. Then 20 containers in each of 5 tenants at once (image, one snapshot each): all
// succeed, host ranges disjoint, the service's resident memory. Runs its own sysrunc-mgr, containerd
// and service (names `tnt-bench-*`), so it shares nothing with the other scenarios.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { TenantsClient } from '../src/tenants-api/client.ts';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { sweepManager } from '../test/helpers/manager-state.ts';
import { startContainerd } from '../test/rig/dockerd.ts';
import { ensureContainerdImage } from '../test/rig/images.ts';
import { bins, REPO_ROOT } from '../test/rig/paths.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, log, makeRow, mustTime, type Paired } from './lib.ts';

const TENANTS = 5;
const PER_TENANT = 20;
/** PID 1 leaves at SIGTERM at once (a trapped signal interrupts `wait`), on both sides alike. */
const ENTRYPOINT = ['/bin/sh', '-c', 'trap "exit 0" TERM; /bin/sleep 100000 & wait'];

function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]);
}

function firstHostUid(pid: number): { start: number; size: number } {
  const [, host, size] = readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
  return { start: host ?? 0, size: size ?? 0 };
}

function overlapFree(ranges: ReadonlyArray<{ start: number; size: number }>): boolean {
  const s = [...ranges].sort((a, b) => a.start - b.start);
  return s.every((r, i) => i === 0 || (s[i - 1]?.start ?? 0) + (s[i - 1]?.size ?? 0) <= r.start);
}

export const tenantsScenario: Scenario = {
  key: 'tenants',
  alias: 'j',
  title: '(j) tenant service: Run / Delete through sysrunc-tenantd vs ctr run / rm with plain runc; 5 x 20 at once',
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const name = `tnt-bench-${ctx.tag}`.slice(0, 40);
    const base = `/run/sysrunc-test/${name}`;
    const socket = path.join(base, 'tenantd.sock');
    const mgr = await startTestManager({ name });
    ctx.cleanup.defer('tenants manager', async () => {
      await sweepManager(mgr.socket).catch(() => undefined);
      await mgr.dispose();
      rmSync(mgr.runDir, { recursive: true, force: true });
    });
    // Last (cleanup runs in reverse): the tenants' parent cgroups, ours by name, once all is stopped.
    ctx.cleanup.defer('tenants cgroups', () => {
      for (const controller of readdirSync('/sys/fs/cgroup')) {
        const top = path.join('/sys/fs/cgroup', controller, name);
        if (!existsSync(top)) continue;
        for (const e of readdirSync(top, { withFileTypes: true })) if (e.isDirectory()) rmdirSync(path.join(top, e.name));
        rmdirSync(top);
      }
    });
    const ctrd = await startContainerd({ name, runtimeBinary: SYSRUNC, env: mgr.env, namespace: 'tnt-bench' });
    ctx.cleanup.defer('tenants containerd', () => ctrd.stop({ purge: true }));
    const logFd = openSync(path.join(ctx.work, 'tenantd.log'), 'a');
    const service: ChildProcess = spawn(
      path.join(REPO_ROOT, 'bin', 'sysrunc-tenantd'),
      ['--socket', socket, '--containerd', ctrd.address, '--state-dir', path.join(ctx.work, 'tenantd'), '--runc-root', path.join(base, 'runc'), '--cgroup-parent', name],
      { stdio: ['ignore', logFd, logFd], env: { ...process.env, ...mgr.env } },
    );
    closeSync(logFd);
    ctx.cleanup.defer('sysrunc-tenantd', async () => {
      if (service.exitCode === null) await new Promise((resolve) => (service.once('exit', resolve), service.kill('SIGTERM')));
      rmSync(base, { recursive: true, force: true });
    });
    const client = await TenantsClient.connect(socket, 20_000);
    ctx.cleanup.defer('tenants client', async () => {
      // Whatever a failed run left: deleted through the service, so sysrunc releases it.
      for (const ns of (await client.call('listNS', {})).namespaces.filter((n) => n.startsWith('tnt-bench'))) {
        for (const c of (await client.call('list', { ns })).containers) await client.call('delete', { ns, id: c.id }).catch(() => undefined);
      }
      client.close();
    });
    await client.call('createNS', { ns: 'tnt-bench' });

    // The same busybox tree for both sides, a copy each (sysrunc may take ownership of its own).
    const rootfsRunc = path.join(ctx.work, 'tnt-rootfs-runc');
    const rootfsSys = path.join(ctx.work, 'tnt-rootfs-sysrunc');
    for (const r of [rootfsRunc, rootfsSys]) cpSync(await ctx.busyboxRootfs(), r, { recursive: true, verbatimSymlinks: true });
    const o = { scratch: ctx.work, env: { ...process.env, ...mgr.env } };
    const ctr = (args: string[]): number => mustTime(bins.ctr, ['--address', ctrd.address, '--namespace', 'tnt-bench', ...args], o);
    const ctrRun = (id: string): number =>
      ctr(['run', '-d', '--null-io', '--runtime', 'io.containerd.runc.v2', '--runc-binary', bins.runc, '--runc-root', ctrd.runcRoot, '--cgroup', `/${name}/plain/${id}`, '--rootfs', rootfsRunc, id, ...ENTRYPOINT]);
    const ctrRm = (id: string): number => ctr(['task', 'kill', id]) + ctr(['task', 'rm', '-f', id]) + ctr(['containers', 'rm', id]);
    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };

    const run: Paired = { runc: [], sysrunc: [] };
    const del: Paired = { runc: [], sysrunc: [] };
    const total = ctx.opts.warmup + ctx.opts.n;
    for (let i = 0; i < total; i++) {
      await checkpoint();
      const id = `tb-${i}`;
      const r1 = ctrRun(`${id}-r`);
      const s1 = await timed(() => client.call('run', { ns: 'tnt-bench', container: { name: `${id}-s`, rootfs: rootfsSys, entrypoint: ENTRYPOINT, shutdownTimeout: 10 } }));
      const r2 = ctrRm(`${id}-r`);
      const s2 = await timed(() => client.call('delete', { ns: 'tnt-bench', id: `${id}-s` }));
      if (i < ctx.opts.warmup) continue;
      run.runc.push(r1);
      run.sysrunc.push(s1);
      del.runc.push(r2);
      del.sysrunc.push(s2);
      if ((i + 1) % Math.max(1, Math.ceil(total / 4)) === 0) log(`(j) tenants: ${i + 1}/${total} rounds`);
    }

    // 5 tenants x 20 containers, all Run calls at once; each from the image (a snapshot each).
    const tenants = Array.from({ length: TENANTS }, (_, t) => `tnt-bench-${t}`);
    for (const ns of tenants) {
      await client.call('createNS', { ns });
      await ensureContainerdImage({ ctr: (args, opts) => ctrd.ctr(['--namespace', ns, ...args], opts) });
    }
    const rssBefore = vmRssKb(service.pid ?? 0);
    const t0 = performance.now();
    const results = await Promise.allSettled(
      tenants.flatMap((ns) => Array.from({ length: PER_TENANT }, (_, k) => client.call('run', { ns, container: { name: `c${k}`, image: 'docker.io/library/bb:local', entrypoint: ENTRYPOINT } }))),
    );
    const burstMs = performance.now() - t0;
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    const rssAt100 = vmRssKb(service.pid ?? 0);
    const states = (await Promise.all(tenants.map((ns) => client.call('list', { ns })))).flatMap((l) => l.containers);
    const running = states.filter((s) => s.status === 'running' && s.pid > 0);
    const ranges = running.map((s) => firstHostUid(s.pid));
    const disjoint = overlapFree(ranges);
    const t1 = performance.now();
    await Promise.allSettled(tenants.flatMap((ns) => Array.from({ length: PER_TENANT }, (_, k) => client.call('delete', { ns, id: `c${k}` }))));
    const deleteAllMs = performance.now() - t1;
    const leftover = (await Promise.all(tenants.map((ns) => client.call('list', { ns })))).flatMap((l) => l.containers).length;
    log(`(j) ${TENANTS} x ${PER_TENANT}: ${results.length - failed.length} ran, ${running.length} running, disjoint ${disjoint}, RSS ${rssAt100} kB`);

    return {
      rows: [
        makeRow('(j)', 'Run until the entrypoint runs', { runc: 'ctr run -d --null-io --rootfs R (runc v2 shim, plain runc)', sysrunc: 'tenantd API run {rootfs R} (runc v2 shim, BinaryName sysrunc)' }, run),
        makeRow('(j)', 'Delete (SIGTERM, exit, remove)', { runc: 'ctr task kill + ctr task rm -f + ctr containers rm', sysrunc: 'tenantd API delete' }, del),
      ],
      notes: [
        `(j) ${TENANTS} tenants x ${PER_TENANT} containers, Run all at once: ${results.length - failed.length}/${results.length} succeeded in ${(burstMs / 1000).toFixed(1)} s, ${running.length} running, host uid ranges disjoint: ${disjoint}; deleting all took ${(deleteAllMs / 1000).toFixed(1)} s, ${leftover} left`,
        `(j) sysrunc-tenantd VmRSS ${rssBefore} kB idle, ${rssAt100} kB with ${running.length} containers`,
        '(j) ctr side: each sample spawns ctr (a Go binary, ~10-20 ms start-up each; Delete spawns three); the service side is one request on an open connection',
        ...(failed.length > 0 ? [`(j) failures: ${failed.slice(0, 3).join(' | ')}`] : []),
      ],
      extra: { burstMs, deleteAllMs, rssBeforeKb: rssBefore, rssAt100Kb: rssAt100, disjoint, failed: failed.length },
    };
  },
};
