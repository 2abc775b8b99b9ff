// (c)'s per-call table: each runtime call dockerd's shim makes for one `docker run --rm bb:local
// true` (create, start, the delete after the exit, the second delete), timed by the same logging sh
// wrapper around runc (`runc-timed`) and around bin/sysrunc (`sysrunc-timed`), runs alternating.
// Medians per call and the difference: where sysrunc's added time is, re-measurable each round.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DockerDaemon } from '../test/rig/dockerd.ts';
import type { BenchContext } from './context.ts';
import { checkpoint, fmtMs, log, mustTime, renderTable, stats } from './lib.ts';

/** The calls of one container, in order of their start: "delete" twice becomes "delete (1st)", "delete (2nd)". */
function callsByContainer(logFile: string): Map<string, Array<{ call: string; ms: number }>> {
  const raw = new Map<string, Array<{ sub: string; start: bigint; ms: number }>>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const [s0, e0, sub, , last] = line.split(' ');
    if (s0 === undefined || e0 === undefined || sub === undefined || last === undefined) continue;
    const list = raw.get(last) ?? [];
    list.push({ sub, start: BigInt(s0), ms: Number((BigInt(e0) - BigInt(s0)) / 1000n) / 1000 });
    raw.set(last, list);
  }
  const out = new Map<string, Array<{ call: string; ms: number }>>();
  for (const [id, list] of raw) {
    list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let deletes = 0;
    out.set(id, list.map((c) => ({ call: c.sub === 'delete' ? `delete (${++deletes === 1 ? '1st' : '2nd'})` : c.sub, ms: c.ms })));
  }
  return out;
}

export interface PerCallComparison {
  readonly k: number;
  /** call -> runtime -> one sample per docker run. */
  readonly samples: Record<string, { runc: number[]; sysrunc: number[] }>;
  readonly table: string;
}

/** `k` docker runs per runtime (after one warm-up pair), runc-timed and sysrunc-timed alternating. */
export async function perCallComparison(ctx: BenchContext, d: DockerDaemon, image: string, k: number): Promise<PerCallComparison> {
  const o = { scratch: ctx.work, env: ctx.dockerEnv(d), timeoutMs: 120_000 };
  const logs = { runc: ctx.timedRuncLog, sysrunc: ctx.timedRuntimeLog };
  for (const f of Object.values(logs)) rmSync(f, { force: true });
  const ids = { runc: [] as string[], sysrunc: [] as string[] };
  for (let i = 0; i <= k; i++) {
    await checkpoint();
    for (const runtime of ['runc', 'sysrunc'] as const) {
      const cidfile = path.join(ctx.work, `cid-per-call-${runtime}-${i}`);
      mustTime(d.cli, ['run', '--rm', '--cidfile', cidfile, `--runtime=${runtime}-timed`, image, 'true'], o);
      const id = readFileSync(cidfile, 'utf8').trim();
      rmSync(cidfile, { force: true });
      if (i > 0) ids[runtime].push(id);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 1000)); // a delete the shim issues after the client returned
  const samples: PerCallComparison['samples'] = {};
  for (const runtime of ['runc', 'sysrunc'] as const) {
    const calls = callsByContainer(logs[runtime]);
    for (const id of ids[runtime]) {
      for (const c of calls.get(id) ?? []) ((samples[c.call] ??= { runc: [], sysrunc: [] })[runtime]).push(c.ms);
    }
  }
  const order = ['create', 'start', 'delete (1st)', 'delete (2nd)'];
  const calls = Object.keys(samples).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  const rows = calls.map((call) => {
    const s = samples[call] as { runc: number[]; sysrunc: number[] };
    const [r, m] = [stats(s.runc).median, stats(s.sysrunc).median];
    return [call, fmtMs(r), fmtMs(m), `${m - r >= 0 ? '+' : ''}${fmtMs(m - r)}`, `${s.runc.length}/${s.sysrunc.length}`];
  });
  const table = renderTable(['call', 'runc ms', 'sysrunc ms', 'added', 'n'], rows, new Set([1, 2, 3, 4]));
  log(`(c) per call, medians of ${k} docker runs each (same logging wrapper both sides):\n${table}`);
  return { k, samples, table };
}
