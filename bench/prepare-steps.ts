// Where the manager's `prepare` spends its time, step by step, as the manager itself logs it
// ('prepare steps', debug level: src/manager/step-timings.ts). A private manager and dockerd;
// N `docker run --rm` one after another under sysrunc, interleaved with the same under runc (so
// the docker-level ratio is measured in the same run); then the medians of every step. --bundle:
// no dockerd, N `create` + `delete --force` of a busybox bundle through the C launcher against
// runc's of a copy of it ((p)'s create, step by step).
//   node --import tsx bench/prepare-steps.ts [--n 30] [--bundle] [--lxcfs] [--json <file>] [--cpu-prof <dir>]
// --cpu-prof: the manager runs with node's --cpu-prof into <dir> (a .cpuprofile, written at its exit).
// Not part of `npm test` or CI. See bench/README.md (round 3).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureBusyboxRootfs, ensureDockerImage, makeBundle } from '../test/rig/images.ts';
import { bins } from '../test/rig/paths.ts';
import { quantile } from './lib.ts';
import { profilingNode, stepLines, stepTable } from './mgr-profile.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '30' }, bundle: { type: 'boolean', default: false }, lxcfs: { type: 'boolean', default: false }, json: { type: 'string' }, 'cpu-prof': { type: 'string' } } });
const N = Number(values.n);
if (!Number.isInteger(N) || N < 1) throw new Error('prepare-steps: --n takes a positive integer');
const WARMUP = 2;

async function timedRun(d: DockerDaemon, runtime: string): Promise<number> {
  const t0 = performance.now();
  await d.docker(['run', '--rm', `--runtime=${runtime}`, 'bb:local', 'true']);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const cpuProf = values['cpu-prof'];
  const mgr = await startTestManager({
    name: 'prep-steps',
    lxcfs: values.lxcfs === true,
    ...(cpuProf === undefined ? {} : { env: { SYSRUNC_NODE: profilingNode(cpuProf) } }),
  });
  let d: DockerDaemon | undefined;
  let scratch: string | undefined;
  try {
    let timed: (runtime: 'runc' | 'sysrunc', i: number) => Promise<number>;
    let what: string;
    if (values.bundle === true) {
      scratch = mkdtempSync('/var/tmp/sysrunc-prep-steps-');
      timed = await bundleCreates(scratch, mgr.env);
      what = 'create + delete --force of a busybox bundle (create timed)';
    } else {
      const daemon = await startDockerd({ name: 'prep-steps', runtimes: { sysrunc: { path: SYSRUNC } }, env: mgr.env });
      d = daemon;
      await ensureDockerImage(daemon);
      timed = (runtime) => timedRun(daemon, runtime);
      what = 'docker run --rm bb:local true';
    }
    const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const docker = { runc: [] as number[], sysrunc: [] as number[] };
    for (let i = 0; i < WARMUP + N; i++) {
      const r = await timed('runc', i);
      const s = await timed('sysrunc', i);
      if (i >= WARMUP) {
        docker.runc.push(r);
        docker.sysrunc.push(s);
      }
    }
    const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const med = (xs: number[]) => quantile(xs, 0.5);
    console.log(`load average ${load0} -> ${load1}; ${what}, lxcfs ${values.lxcfs === true ? 'on' : 'off'}`);
    // A release answers the delete after its engine side; its run dir's part follows ('release steps').
    for (const what of ['prepare', 'engine-side release', 'release'] as const) {
      const lines = stepLines(mgr.log(), what).slice(WARMUP);
      console.log(`${what} steps over ${lines.length} ${what}s (the manager's own timings)`);
      console.log(stepTable(lines));
    }
    const [r, s] = [med(docker.runc), med(docker.sysrunc)];
    console.log(`${what}, interleaved, n=${N}: runc ${r.toFixed(1)} ms, sysrunc ${s.toFixed(1)} ms, ratio ${(s / r).toFixed(2)}, +${(s - r).toFixed(1)} ms`);
    if (values.json !== undefined) {
      const [prepares, releases] = [stepLines(mgr.log(), 'prepare'), stepLines(mgr.log(), 'release')];
      writeFileSync(values.json, `${JSON.stringify({ n: N, load0, load1, docker, prepares, releases }, null, 2)}\n`);
    }
  } finally {
    await d?.stop();
    await mgr.dispose();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/** --bundle: each call creates a fresh id from a copy of the bundle of its own, times the create, then deletes it. */
async function bundleCreates(scratch: string, env: Record<string, string>): Promise<(runtime: 'runc' | 'sysrunc', i: number) => Promise<number>> {
  const rootfs = await ensureBusyboxRootfs();
  const setup = { runc: { bin: bins.runc, env: process.env }, sysrunc: { bin: SYSRUNC, env: { ...process.env, ...env } } };
  const bundles = {
    runc: (await makeBundle(path.join(scratch, 'runc'), rootfs, ['true'])).bundle,
    sysrunc: (await makeBundle(path.join(scratch, 'sysrunc'), rootfs, ['true'])).bundle,
  };
  return async (runtime, i) => {
    const { bin, env: callEnv } = setup[runtime];
    const root = ['--root', path.join(scratch, `root-${runtime}`)];
    const id = `prep-steps-${runtime}-${process.pid}-${i}`;
    const t0 = performance.now();
    execFileSync(bin, [...root, 'create', '--bundle', bundles[runtime], id], { env: callEnv, stdio: 'ignore' });
    const ms = performance.now() - t0;
    execFileSync(bin, [...root, 'delete', '--force', id], { env: callEnv, stdio: 'ignore' });
    return ms;
  };
}

await main();
