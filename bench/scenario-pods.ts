// (q) Pods at scale (issue 24): 30 pods started at once through containerd's CRI, each one
// RunPodSandbox + CreateContainer + StartContainer (what a kubelet does for a one-container pod),
// with handler runc, then the same 30 with handler sysrunc (alternating per round). Per pod: the
// wall time from its RunPodSandbox until its StartContainer returned; median and p99 per handler.
// Each batch is stopped and removed (untimed) before the next. A sysrunc batch must come up whole,
// every container in a user namespace of its own, the 30 host ranges pairwise disjoint.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { APP_IMAGE, PAUSE_IMAGE, startCriRig, type CriRig } from '../test/rig/cri.ts';
import { criRuntime, type CriRuntime, type PodSandboxConfig } from '../test/rig/cri-api.ts';
import { ensureOciImageTar } from '../test/rig/images.ts';
import { ensurePauseImageTar } from '../test/rig/pause-image.ts';
import type { BenchContext, Scenario, ScenarioResult } from './context.ts';
import { checkpoint, log, makeRow, quantile, type Paired } from './lib.ts';

const PODS = 30;
const HANDLERS = ['runc', 'sysrunc'] as const;
export type Handler = (typeof HANDLERS)[number];
const RIG_NAME = 'sysrunc-bench-cri';

export interface Pod {
  readonly podId: string;
  readonly containerId: string;
  readonly ms: number;
}

/** One pod, timed from RunPodSandbox until StartContainer returned. */
export async function startPod(cri: CriRuntime, rig: CriRig, handler: Handler, name: string): Promise<Pod> {
  const config: PodSandboxConfig = {
    metadata: { name, uid: randomUUID(), namespace: 'default', attempt: 0 },
    log_directory: path.join(rig.logDir, name),
    linux: { security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } } },
  };
  const t0 = performance.now();
  const podId = await cri.runPodSandbox(config, handler);
  const containerId = await cri.createContainer(podId, { metadata: { name: 'app', attempt: 0 }, image: { image: APP_IMAGE }, command: ['sleep', '100000'], log_path: 'app.log' }, config);
  await cri.startContainer(containerId);
  return { podId, containerId, ms: performance.now() - t0 };
}

export async function removePods(cri: CriRuntime, pods: readonly { podId: string }[]): Promise<void> {
  await Promise.all(
    pods.map(async ({ podId }) => {
      await cri.stopPodSandbox(podId);
      await cri.removePodSandbox(podId);
    }),
  );
}

export async function listedPods(rig: CriRig): Promise<{ podId: string }[]> {
  const r = await rig.cri.runtime('ListPodSandbox', { filter: {} });
  const items = Array.isArray(r['items']) ? (r['items'] as Array<Record<string, unknown>>) : [];
  return items.map((item) => ({ podId: String(item['id']) }));
}

/** Host uid ranges of the batch's containers: "<inside> <host> <size>" of each one's uid_map. */
export async function hostRanges(cri: CriRuntime, pods: readonly Pod[]): Promise<{ start: number; size: number }[]> {
  return Promise.all(
    pods.map(async (p) => {
      const r = await cri.execSync(p.containerId, ['cat', '/proc/self/uid_map'], 30);
      const [inside, start, size] = r.stdout.trim().split(/\s+/).map(Number);
      if (r.exitCode !== 0 || inside !== 0 || start === undefined || size === undefined || start === 0) {
        throw new Error(`pod ${p.podId}: uid_map ${JSON.stringify(r.stdout.trim())}: not a container of its own user namespace`);
      }
      return { start, size };
    }),
  );
}

export function overlapping(ranges: readonly { start: number; size: number }[]): number {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let n = 0;
  for (let i = 1; i < sorted.length; i++) {
    const [prev, next] = [sorted[i - 1], sorted[i]];
    if (prev !== undefined && next !== undefined && prev.start + prev.size > next.start) n++;
  }
  return n;
}

/** One private containerd with CRI per bench run, shared by (q) and (r): its rig name is fixed. */
const benchCri = new WeakMap<BenchContext, Promise<{ rig: CriRig; cri: CriRuntime }>>();

/** The scenarios' private containerd with CRI, handlers runc and sysrunc (the bench's manager), stopped at the bench's cleanup. */
function startBenchCri(ctx: BenchContext, scenario: string): Promise<{ rig: CriRig; cri: CriRuntime }> {
  let started = benchCri.get(ctx);
  if (started === undefined) {
    started = (async () => {
      const mgr = await ctx.manager();
      const images = { pauseTar: await ensurePauseImageTar(PAUSE_IMAGE), appTar: await ensureOciImageTar(APP_IMAGE) };
      log(`${scenario} starting a private containerd with CRI (${RIG_NAME})`);
      const rig = await startCriRig(RIG_NAME, { sysrunc: ctx.sysrunc }, mgr.env, { images });
      ctx.cleanup.defer('CRI containerd', () => rig.stop());
      return { rig, cri: criRuntime(rig.cri) };
    })();
    benchCri.set(ctx, started);
  }
  return started;
}

export const podsScenario: Scenario = {
  key: 'pods',
  alias: 'q',
  title: `(q) ${PODS} pods at once through containerd's CRI (RunPodSandbox + CreateContainer + StartContainer), handler runc vs sysrunc`,
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const { rig, cri } = await startBenchCri(ctx, '(q)');
    const rounds = ctx.opts.quick ? 1 : 2;
    const samples: Paired = { runc: [], sysrunc: [] };
    const notes: string[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const handler of HANDLERS) {
        await checkpoint();
        const t0 = performance.now();
        const settled = await Promise.allSettled(Array.from({ length: PODS }, (_, i) => startPod(cri, rig, handler, `bench-q-${handler}-${ctx.tag}-${round}-${i}`)));
        const wall = performance.now() - t0;
        const pods = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        try {
          const failed = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
          if (failed.length > 0) throw new Error(`(q) ${handler}: ${failed.length}/${PODS} pods failed: ${failed[0]}`);
          if (handler === 'sysrunc') {
            const bad = overlapping(await hostRanges(cri, pods));
            if (bad > 0) throw new Error(`(q) sysrunc: ${bad} of ${PODS} host uid ranges overlap`);
          }
          samples[handler].push(...pods.map((p) => p.ms));
          notes.push(`(q) round ${round + 1} ${handler}: ${PODS}/${PODS} pods up${handler === 'sysrunc' ? ', uid ranges disjoint' : ''}; p50 ${quantile(pods.map((p) => p.ms), 0.5).toFixed(0)} ms, p99 ${quantile(pods.map((p) => p.ms), 0.99).toFixed(0)} ms, batch wall ${wall.toFixed(0)} ms`);
        } finally {
          // Pods that failed half-way are containerd's all the same: every sandbox it lists goes.
          await removePods(cri, await listedPods(rig));
        }
      }
      log(`(q) pods: ${round + 1}/${rounds} rounds of ${PODS} per handler`);
    }
    const row = makeRow('(q)', `${PODS} pods at once (CRI)`, { runc: `${PODS} x RunPodSandbox+CreateContainer+StartContainer, handler runc`, sysrunc: 'the same, handler sysrunc' }, samples);
    const p99 = (xs: number[]) => quantile(xs, 0.99);
    notes.push(`(q) per pod over ${rounds} round(s): p99 runc ${p99(samples.runc).toFixed(0)} ms, sysrunc ${p99(samples.sysrunc).toFixed(0)} ms (ratio ${(p99(samples.sysrunc) / p99(samples.runc)).toFixed(2)})`);
    return { rows: [row], notes };
  },
};

/**
 * (r) One pod at a time, as a kubelet starts a pod on a quiet node: n pods one after another,
 * handlers alternating, each timed from RunPodSandbox until StartContainer returned and removed
 * (untimed) before the next.
 */
export const onePodScenario: Scenario = {
  key: 'one-pod',
  alias: 'r',
  title: "(r) one pod at a time through containerd's CRI (RunPodSandbox + CreateContainer + StartContainer), handler runc vs sysrunc, interleaved",
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const { rig, cri } = await startBenchCri(ctx, '(r)');
    const samples: Paired = { runc: [], sysrunc: [] };
    for (let i = 0; i < ctx.opts.warmup + ctx.opts.n; i++) {
      for (const handler of HANDLERS) {
        await checkpoint();
        const pod = await startPod(cri, rig, handler, `bench-r-${handler}-${ctx.tag}-${i}`);
        await removePods(cri, [pod]);
        if (i >= ctx.opts.warmup) samples[handler].push(pod.ms);
      }
    }
    return { rows: [makeRow('(r)', 'one pod at a time (CRI)', { runc: 'RunPodSandbox+CreateContainer+StartContainer, handler runc', sysrunc: 'the same, handler sysrunc' }, samples)] };
  },
};
