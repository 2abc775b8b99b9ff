// Soak: many create/start/kill/delete cycles through bin/sysrunc against a private manager, as
// containerd's shim drives runc. Every other cycle's container has a store volume (a host dir, a
// mount, the synchronous delete) in a bundle of its own, removed afterwards as `docker rm` would.
// At the end: zero leaked mounts, allocations, records, files under the state and run dirs; the
// manager's open fds and RSS (sampled every --every cycles after a sweep) must not grow.
//   npm run soak -- [--cycles 1000] [--every 50] [--rss-limit-mib 16]
// Prints a report; exits 1 on a leak or a failed cycle. Not part of `npm test`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC, type TestManager } from '../helpers/manager.ts';
import { ensureBusyboxRootfs, makeBundle } from '../rig/images.ts';
import { runToFiles, type Outcome } from '../oci-conformance/fixture.ts';
import { scratchDir } from '../e2e/helpers.ts';
import { held, NOTHING, type Held } from '../e2e/faults-helpers.ts';
import { sweepManager } from '../helpers/manager-state.ts';

const { values } = parseArgs({
  options: { cycles: { type: 'string', default: '1000' }, every: { type: 'string', default: '50' }, 'rss-limit-mib': { type: 'string', default: '16' } },
});
const CYCLES = Number(values.cycles);
const EVERY = Number(values.every);
const RSS_LIMIT_KIB = Number(values['rss-limit-mib']) * 1024;
if (![CYCLES, EVERY, RSS_LIMIT_KIB].every((n) => Number.isInteger(n) && n > 0)) throw new Error('soak: --cycles, --every and --rss-limit-mib take positive integers');

const RUNC_ROOT = '/run/sysrunc-test/rel-soak-runc';

interface Sample {
  cycle: number;
  fds: number;
  rssKiB: number;
}

function sample(pid: number, cycle: number): Sample {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cycle, fds: readdirSync(`/proc/${pid}/fd`).length, rssKiB: Number(rss) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function main(): Promise<number> {
  const mgr: TestManager = await startTestManager({ name: 'rel-soak' });
  const work = scratchDir('rel-soak');
  const rootfs = await ensureBusyboxRootfs();
  const env = { ...process.env, ...mgr.env };
  const sysrunc = (args: readonly string[]): Promise<Outcome> => runToFiles(SYSRUNC, ['--root', RUNC_ROOT, ...args], { env, cwd: work, input: undefined, dir: work });
  const plain = await makeBundle(path.join(work, 'plain'), rootfs, ['sleep', '100000']);
  const failures: string[] = [];
  const samples: Sample[] = [];
  const createMs: number[] = [];
  let leftover: Held = NOTHING;
  const t0 = Date.now();
  try {
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const id = `rel-soak-${cycle}`;
      const withVolume = cycle % 2 === 0;
      let bundle = plain.bundle;
      if (withVolume) {
        const b = await makeBundle(path.join(work, id), rootfs, ['sleep', '100000']);
        mkdirSync(path.join(b.rootfs, 'var/lib/docker'), { recursive: true });
        bundle = b.bundle;
      }
      const c0 = performance.now();
      const steps: [string, readonly string[]][] = [
        ['create', ['create', '--bundle', bundle, id]],
        ['start', ['start', id]],
        ['kill', ['kill', id, 'KILL']],
        ['delete', ['delete', '--force', id]],
      ];
      for (const [name, args] of steps) {
        const out = await sysrunc(args);
        if (name === 'create') createMs.push(performance.now() - c0);
        if (out.exitCode !== 0) {
          failures.push(`cycle ${cycle} ${name}: ${out.stderr.trim().split('\n')[0] ?? ''}`);
          if (name === 'create') break;
        }
      }
      if (withVolume) rmSync(bundle, { recursive: true, force: true });
      if (cycle % EVERY === 0 || cycle === CYCLES) {
        await sweepManager(mgr.socket);
        samples.push(sample(mgr.pid(), cycle));
        const s = samples.at(-1) as Sample;
        console.log(`cycle ${cycle}: manager fds ${s.fds}, rss ${(s.rssKiB / 1024).toFixed(1)} MiB, failures ${failures.length}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    }
    leftover = await held(mgr);
  } finally {
    const ids = execFileSync('runc', ['--root', RUNC_ROOT, 'list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const id of ids) await sysrunc(['delete', '--force', id]);
    rmSync(RUNC_ROOT, { recursive: true, force: true });
    await mgr.dispose();
    rmSync(work, { recursive: true, force: true });
  }

  // The first quarter of the samples is warm-up (JIT, heap growth); compare the rest against it.
  const quarter = Math.max(1, Math.floor(samples.length / 4));
  const early = samples.slice(0, quarter);
  const late = samples.slice(-quarter);
  const fdGrowth = Math.max(...late.map((s) => s.fds)) - Math.min(...early.map((s) => s.fds));
  const rssGrowth = median(late.map((s) => s.rssKiB)) - median(early.map((s) => s.rssKiB));
  const leaks = Object.entries(leftover).filter(([, v]) => (v as string[]).length > 0);
  const sorted = [...createMs].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
  console.log('');
  console.log(`soak report: ${CYCLES} cycles (half with a store volume) in ${((Date.now() - t0) / 1000).toFixed(0)} s; load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`  failed steps: ${failures.length}${failures.length > 0 ? ` (first: ${failures[0]})` : ''}`);
  console.log(`  create (sysrunc create, to exit): p50 ${q(0.5).toFixed(0)} ms, p99 ${q(0.99).toFixed(0)} ms`);
  console.log(`  left behind: ${leaks.length === 0 ? 'nothing (mounts, records, allocations, run-dir entries, state files, per-container state dirs)' : leaks.map(([k, v]) => `${k}: ${(v as string[]).slice(0, 5).join(' ')}`).join('; ')}`);
  console.log(`  manager fds: ${samples.map((s) => s.fds).join(' ')} (growth ${fdGrowth})`);
  console.log(`  manager RSS MiB: ${samples.map((s) => (s.rssKiB / 1024).toFixed(1)).join(' ')} (median late - early: ${(rssGrowth / 1024).toFixed(1)} MiB, limit ${RSS_LIMIT_KIB / 1024})`);
  const ok = failures.length === 0 && leaks.length === 0 && fdGrowth <= 0 && rssGrowth <= RSS_LIMIT_KIB;
  console.log(ok ? 'soak: OK' : 'soak: LEAK OR FAILURE');
  return ok ? 0 : 1;
}

process.exitCode = await main();
