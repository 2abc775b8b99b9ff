// sysrunc speed against plain runc, measured in the same run, interleaved (runc sample, sysrunc
// sample, ...). Prints a table and writes bench/results/<timestamp>.json. Never a pass/fail test:
// the exit status is 0 whether or not targets are met (non-zero only when the bench itself broke).
//
//   node --import tsx bench/run.ts [--n 30] [--warmup 2] [--only a,b,...] [--quick] [--profile]
//
// Scenarios (--only takes the key or the letter):
//   run (a)        runc run vs sysrunc run of a busybox bundle, `true`
//   state (b)      runc state vs sysrunc state of a created container (target: <= 15 ms added)
//   docker (c)     docker run --rm --runtime=runc|sysrunc bb:local true (target: ratio <= 1.25), then
//                  each runtime call's time, runc and sysrunc behind one timing wrapper (per-call.ts)
//   docker-1g (d)  the same with a 1 GB / 21k-file image, in one loop with (c) (target: sysrunc's
//                  added time grows by <= 50 ms from bb:local to it)
//   dind (e)       only with --only: the Debian dind image, start and stop with 0 / 100 MB / 1 GB of
//                  inner images (~5 min; builds sysrunc-test/dind:local on first use)
//   ownership (f)  SYSRUNC_OWNERSHIP=clone vs idmap (and runc) on bb:local and the 1 GB image:
//                  run --rm, first start, stop, restart (n <= 8; ~3.5 min; not with --quick)
//   exec (g)       docker exec <id> true into a running container (target: ratio <= 1.25)
//   parallel (h)   50 docker run -d at once per runtime: per-container median and p99
//                  (SYSRUNC_BENCH_PARALLEL=<n>: n at once instead)
//   memory (m)     sysrunc-mgr resident memory with 0 and 100 running containers
//   depot (i)      a process started in a running depot container until its exit code (API and
//                  sysrunc-ctl) vs bare runc exec into the same container; supervisor memory
//   tenants (j)    Run / Delete through sysrunc-tenantd vs ctr run / rm with plain runc; 5 tenants x
//                  20 containers at once: all succeed, ranges disjoint, the service's memory
//   lxcfs (k)      docker run under sysrunc with the lxcfs views vs without them (SYSRUNC_LXCFS=false),
//                  and runc, interleaved; the bench's manager then runs its lxcfs
//   pods (q)       only with --only: 30 pods at once through containerd's CRI (RunPodSandbox +
//                  CreateContainer + StartContainer), handler runc vs sysrunc: per-pod p50 and p99
//   profile (p)    only with --profile or --only: start-up baselines and a phase breakdown of create
// --quick: n=5, 1 warm-up pair, and (d), (f) only when named in --only.
// Needs root, a built dist/ (npm run build), runc, dockerd/containerd, busybox-static, perf (for p).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, bins } from '../test/rig/paths.ts';
import { mountsUnder } from '../test/rig/proc.ts';
import { BENCH_RUN_DIR, BenchContext, type BenchOptions, type Scenario } from './context.ts';
import { abort, log, resultsTable, type Row } from './lib.ts';
import { profileScenario, renderProfile } from './profile.ts';
import { dindScenario } from './scenario-dind.ts';
import { docker1gScenario, dockerScenario } from './scenario-docker.ts';
import { ownershipScenario } from './scenario-ownership.ts';
import { runScenario } from './scenario-run.ts';
import { stateScenario } from './scenario-state.ts';
import { execScenario, memoryScenario, parallelScenario } from './scenario-hotpath.ts';
import { onePodScenario, podsScenario } from './scenario-pods.ts';
import { depotScenario } from './scenario-depot.ts';
import { tenantsScenario } from './scenario-tenants.ts';
import { lxcfsScenario } from './scenario-lxcfs.ts';

const ALL: readonly Scenario[] = [runScenario, stateScenario, dockerScenario, docker1gScenario, execScenario, parallelScenario, memoryScenario, depotScenario, tenantsScenario, lxcfsScenario, podsScenario, onePodScenario, dindScenario, ownershipScenario, profileScenario];
const DEFAULT_KEYS = new Set(['run', 'state', 'docker', 'docker-1g', 'exec', 'parallel', 'memory', 'depot', 'tenants', 'lxcfs', 'ownership']);

interface Cli extends BenchOptions {
  readonly only: ReadonlySet<string> | undefined;
  readonly profile: boolean;
}

function usage(msg?: string): never {
  if (msg !== undefined) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write('usage: node --import tsx bench/run.ts [--n 30] [--warmup 2] [--only a,b,c,d,e,f,p] [--quick] [--profile]\n');
  process.exit(2);
}

function parseCli(argv: readonly string[]): Cli {
  let n: number | undefined;
  let warmup: number | undefined;
  let only: Set<string> | undefined;
  let quick = false;
  let profile = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case '--n':
        n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--n must be a positive integer');
        break;
      case '--warmup':
        warmup = Number(value());
        if (!Number.isInteger(warmup) || warmup < 0) usage('--warmup must be a non-negative integer');
        break;
      case '--only': {
        only = new Set();
        for (const name of value().split(',').filter(Boolean)) {
          const s = ALL.find((x) => x.key === name || x.alias === name);
          if (s === undefined) usage(`unknown scenario "${name}" (known: ${ALL.map((x) => `${x.key}/${x.alias}`).join(', ')})`);
          only.add(s.key);
        }
        break;
      }
      case '--quick':
        quick = true;
        break;
      case '--profile':
        profile = true;
        break;
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  return { n: n ?? (quick ? 5 : 30), warmup: warmup ?? (quick ? 1 : 2), quick, only, profile };
}

function selected(cli: Cli): Scenario[] {
  return ALL.filter((s) => {
    if (cli.only !== undefined) return cli.only.has(s.key) || (s.key === 'profile' && cli.profile);
    if (s.key === 'profile') return cli.profile;
    if (s.key === 'docker-1g' && cli.quick) return false;
    if (s.key === 'ownership' && cli.quick) return false;
    return DEFAULT_KEYS.has(s.key);
  });
}

function firstLine(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: REPO_ROOT });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : `unavailable (${cmd})`;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

function environment(): Record<string, unknown> {
  const distMtime = statSync(path.join(REPO_ROOT, 'dist', 'sysrunc.mjs')).mtimeMs;
  const srcNewer = newestMtime(path.join(REPO_ROOT, 'src')) > distMtime;
  return {
    host: os.hostname(),
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    runc: firstLine(bins.runc, ['--version']),
    dockerd: firstLine(bins.dockerd, ['--version']),
    git: firstLine('git', ['rev-parse', '--short', 'HEAD']),
    gitDirty: firstLine('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'bin']) !== '',
    distBuilt: new Date(distMtime).toISOString(),
    srcNewerThanDist: srcNewer,
    loadAvgAtStart: os.loadavg(),
  };
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage('needs root (runc, mounts, dockerd)');
  const scenarios = selected(cli);
  if (scenarios.length === 0) usage('no scenario selected');
  const started = new Date();
  const env = environment();
  if (env['srcNewerThanDist'] === true) log('WARNING: src/ has files newer than dist/sysrunc.mjs; this measures the built bundle (npm run build)');
  log(`scenarios: ${scenarios.map((s) => s.key).join(', ')}; n=${cli.n} warmup=${cli.warmup}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const ctx = new BenchContext(cli, new Set(scenarios.map((s) => s.key)));
  // The sample loops stop at their next checkpoint; the normal path below then cleans up.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (abort.reason === undefined) log(`${sig}: stopping after the current sample, then cleaning up`);
    else log(`${sig}: already stopping`);
    abort.reason ??= sig;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: Array<{ key: string; title: string; seconds: number; error?: string; notes?: string[]; extra?: Record<string, unknown>; rows: Row[] }> = [];
  try {
    for (const s of scenarios) {
      if (abort.reason !== undefined) break;
      log(`${s.title}`);
      const t = performance.now();
      try {
        const r = await s.run(ctx);
        results.push({ key: s.key, title: s.title, seconds: (performance.now() - t) / 1000, rows: r.rows, ...(r.notes ? { notes: r.notes } : {}), ...(r.extra ? { extra: r.extra } : {}) });
      } catch (err) {
        const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
        log(`${s.key} FAILED: ${msg}`);
        results.push({ key: s.key, title: s.title, seconds: (performance.now() - t) / 1000, rows: [], error: msg });
      }
      log(`${s.key}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
  } finally {
    log('cleaning up');
    await ctx.cleanup.run();
  }
  const leftovers = mountsUnder([BENCH_RUN_DIR, ctx.work]);
  const problems = [...ctx.cleanup.problems, ...(leftovers.length > 0 ? [`mounts left: ${leftovers.join(', ')}`] : [])];

  const finished = new Date();
  const rows = results.flatMap((r) => r.rows);
  const out: string[] = [];
  out.push('', resultsTable(rows), '');
  out.push('times are wall-clock ms per command (median (p90)); ratio = sysrunc median / runc median; added = median difference (median of paired differences)');
  for (const r of results) {
    for (const note of r.notes ?? []) out.push(note);
    if (r.error !== undefined) out.push(`${r.key}: FAILED: ${r.error.split('\n')[0]}`);
  }
  const profile = results.find((r) => r.key === 'profile');
  if (profile?.extra !== undefined) out.push('', renderProfile(profile.extra));
  out.push('', `scenario times: ${results.map((r) => `${r.key} ${r.key === 'docker-1g' && r.seconds < 0.05 ? '(in the docker loop)' : `${r.seconds.toFixed(1)} s`}`).join(', ')}; total ${((finished.getTime() - started.getTime()) / 1000).toFixed(1)} s`);
  if (ctx.build !== undefined) out.push(`measured dist/ build of ${ctx.build.built} (snapshot; sha256 ${ctx.build.sha.slice(0, 12)})`);
  for (const p of problems) out.push(`CLEANUP PROBLEM: ${p}`);

  const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: (finished.getTime() - started.getTime()) / 1000,
    options: { n: cli.n, warmup: cli.warmup, quick: cli.quick, profile: cli.profile, only: cli.only ? [...cli.only] : null },
    environment: env,
    measuredBuild: ctx.build ?? null,
    interrupted: abort.reason ?? null,
    loadAvgAtEnd: os.loadavg(),
    scenarios: results,
    cleanupProblems: problems,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  out.push(`results: ${path.relative(process.cwd(), file)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  process.exitCode = abort.reason !== undefined ? 130 : results.some((r) => r.error !== undefined) || problems.length > 0 ? 1 : 0;
}

await main();
