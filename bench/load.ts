// Load: N containers created at once through a private dockerd, with sysrunc and, interleaved, with
// plain runc for the ratio. Per batch every `docker run -d` is timed from its own start; a sysrunc
// batch must succeed whole, with every container's range disjoint from all others (read from each
// container's /proc/<pid>/uid_map and from the manager's subid state, which must agree).
//   node --import tsx bench/load.ts [--n 100] [--rounds 1] [--json <file>] [--cpu-prof <dir>]
// Also prints the manager's resident memory with each sysrunc batch running (and its peak);
// --cpu-prof: the manager writes a CPU profile into <dir> at its exit.
// Not part of `npm test` or CI: it takes a few minutes on a 2-CPU machine. See bench/README.md.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestManager, SYSRUNC } from '../test/helpers/manager.ts';
import { startDockerd, type DockerDaemon } from '../test/rig/dockerd.ts';
import { ensureDockerImage } from '../test/rig/images.ts';
import { quantile } from './lib.ts';
import { profilingNode, residentMiB, stepLines, swapWaits } from './mgr-profile.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100' }, rounds: { type: 'string', default: '1' }, json: { type: 'string' }, 'cpu-prof': { type: 'string' } } });
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('load: --n and --rounds take positive integers');

interface Batch {
  runtime: 'runc' | 'sysrunc';
  round: number;
  ms: number[];
  failures: string[];
  wallMs: number;
}

/** `docker run -d` of one container, timed; resolves with its time and exit. */
function timedRun(d: DockerDaemon, runtime: string, name: string): Promise<{ ms: number; code: number; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(d.cli, ['--host', d.host, 'run', '-d', `--runtime=${runtime}`, '--name', name, '--label', 'rel.load=1', 'bb:local', 'sleep', '100000'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('exit', (code) => resolve({ ms: performance.now() - t0, code: code ?? 1, stderr: stderr.trim() }));
  });
}

async function batch(d: DockerDaemon, runtime: 'runc' | 'sysrunc', round: number): Promise<Batch> {
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: N }, (_, i) => timedRun(d, runtime, `rel-load-${runtime}-${round}-${i}`)));
  return { runtime, round, ms: runs.map((r) => r.ms), failures: runs.filter((r) => r.code !== 0).map((r) => r.stderr.split('\n')[0] ?? ''), wallMs: performance.now() - t0 };
}

/** Host uid ranges of the running load containers, from their init's uid_map. */
async function liveRanges(d: DockerDaemon): Promise<{ name: string; start: number; size: number }[]> {
  const ids = (await d.docker(['ps', '-q', '--filter', 'label=rel.load=1'])).stdout.split('\n').filter(Boolean);
  const out: { name: string; start: number; size: number }[] = [];
  for (const id of ids) {
    const pid = Number((await d.docker(['inspect', '--format', '{{.State.Pid}}', id])).stdout.trim());
    const [, start, size] = readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
    out.push({ name: id, start: start ?? -1, size: size ?? -1 });
  }
  return out;
}

function overlaps(ranges: readonly { start: number; size: number }[]): number {
  const s = [...ranges].sort((a, b) => a.start - b.start);
  let n = 0;
  for (let i = 1; i < s.length; i++) if ((s[i - 1]?.start ?? 0) + (s[i - 1]?.size ?? 0) > (s[i]?.start ?? 0)) n++;
  return n;
}

async function removeAll(d: DockerDaemon): Promise<void> {
  const ids = (await d.docker(['ps', '-aq', '--filter', 'label=rel.load=1'])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await d.docker(['rm', '-f', ...ids], { reject: false });
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<number> {
  const cpuProf = values['cpu-prof'];
  const mgr = await startTestManager({ name: 'rel-load', ...(cpuProf === undefined ? {} : { env: { SYSRUNC_NODE: profilingNode(cpuProf) } }) });
  let d: DockerDaemon | undefined;
  const batches: Batch[] = [];
  let problems = 0;
  try {
    // A data root that ran a load before starts by removing ~200 stale network sandboxes (~0.45 s
    // each on a busy machine): more than the rig's default minute.
    d = await startDockerd({ name: 'rel-load', runtimes: { sysrunc: { path: SYSRUNC } }, env: mgr.env, startTimeoutMs: 300_000 });
    await ensureDockerImage(d);
    const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`load: ${N} containers at once per batch, ${ROUNDS} round(s), runc then sysrunc each round; load average at start ${load0}`);
    console.log(`manager resident memory with no container: ${residentMiB(mgr.pid()).rss.toFixed(1)} MiB`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const runtime of ['runc', 'sysrunc'] as const) {
        const b = await batch(d, runtime, round);
        batches.push(b);
        const line = `${runtime.padEnd(7)} round ${round}: ${N - b.failures.length}/${N} ok, p50 ${fmt(quantile(b.ms, 0.5))}, p99 ${fmt(quantile(b.ms, 0.99))}, max ${fmt(Math.max(...b.ms))}, batch wall ${fmt(b.wallMs)}`;
        console.log(line);
        for (const f of new Set(b.failures)) console.log(`  failed: ${f}`);
        if (runtime === 'sysrunc') {
          const ranges = await liveRanges(d);
          const held = (JSON.parse(readFileSync(path.join(mgr.stateDir, 'subid.json'), 'utf8')) as { allocations: { uid: number; size: number }[] }).allocations;
          const bad = overlaps(ranges);
          const unheld = ranges.filter((r) => !held.some((a) => a.uid === r.start && a.size === r.size)).length;
          console.log(`  ranges: ${ranges.length} live, ${bad} overlapping, ${unheld} not held by the allocator, ${held.length} allocations`);
          // The manager's own time per prepare (its debug log): what serializing the prepares costs the burst.
          const prepares = stepLines(mgr.log(), 'prepare').slice(-N).map((l) => l.totalMs);
          const sum = prepares.reduce((a, b) => a + b, 0);
          console.log(`  manager prepare (its own timing): p50 ${quantile(prepares, 0.5).toFixed(1)} ms, p99 ${quantile(prepares, 0.99).toFixed(1)} ms, all ${prepares.length} together ${(sum / 1000).toFixed(2)} s of the batch's ${fmt(b.wallMs)}`);
          const waits = swapWaits(mgr.log());
          console.log(`  overlay swaps that waited for the outgoing overlay to go (all batches so far): ${waits.count}, ${waits.totalMs} ms in all, longest ${waits.maxMs} ms, ${waits.notGone} still held after the wait`);
          const mem = residentMiB(mgr.pid());
          console.log(`  manager resident memory with ${ranges.length} running: ${mem.rss.toFixed(1)} MiB (peak so far ${mem.peak.toFixed(1)} MiB)`);
          problems += b.failures.length + bad + unheld + (ranges.length === N ? 0 : 1);
        }
        await removeAll(d);
      }
    }
    const all = (rt: string) => batches.filter((b) => b.runtime === rt).flatMap((b) => b.ms);
    const [r50, s50, r99, s99] = [quantile(all('runc'), 0.5), quantile(all('sysrunc'), 0.5), quantile(all('runc'), 0.99), quantile(all('sysrunc'), 0.99)];
    console.log(`create latency under load (docker run -d, ${N} at once): p50 runc ${fmt(r50)} / sysrunc ${fmt(s50)} (ratio ${(s50 / r50).toFixed(2)}), p99 runc ${fmt(r99)} / sysrunc ${fmt(s99)} (ratio ${(s99 / r99).toFixed(2)})`);
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ n: N, rounds: ROUNDS, load0, batches }, null, 2)}\n`);
  } finally {
    if (d !== undefined) {
      await removeAll(d).catch(() => undefined);
      await d.stop();
    }
    await mgr.dispose();
  }
  console.log(problems === 0 ? 'load: OK' : `load: ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

process.exitCode = await main();
