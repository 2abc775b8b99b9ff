// Issue 24's pods at scale on a stack guest (cgroup v2): bench scenario (q)'s measurement, run in
// the guest by test/stacks/pods-at-scale-extra.sh. N pods started at once through a private
// containerd's CRI (RunPodSandbox + CreateContainer + StartContainer each, timed per pod from its
// RunPodSandbox until its StartContainer returned), handler runc and handler sysrunc in turn, in
// the order runc, sysrunc, sysrunc, runc, ... (so a drift of the machine's speed during the run
// weighs on both alike); each batch stopped and removed, untimed, before the next. A sysrunc
// batch must come up whole, every container in a user namespace of its own, the host ranges
// pairwise disjoint. Prints a line per batch and last the p50/p99 per handler and their ratios.
// usage: pods-at-scale.ts <pause-image.tar> <busybox-image.tar> [pods per batch (10)] [rounds (2)]
// Off the guests (no sysrunc-mgr of the machine's own): SYSRUNC_CHECK_TEST_MANAGER=1 runs it with
// the checkout's bin/sysrunc and a private manager.
import { hostRanges, listedPods, overlapping, removePods, startPod, type Handler } from '../../bench/scenario-pods.ts';
import { quantile } from '../../bench/lib.ts';
import { startCriRig } from '../rig/cri.ts';
import { criRuntime } from '../rig/cri-api.ts';
import { SYSRUNC as TEST_SYSRUNC, startTestManager } from '../helpers/manager.ts';

const [pauseTar, appTar, podsArg = '10', roundsArg = '2'] = process.argv.slice(2);
if (pauseTar === undefined || appTar === undefined) throw new Error('usage: pods-at-scale.ts <pause-image.tar> <busybox-image.tar> [pods per batch] [rounds]');
const PODS = Number(podsArg);
const ROUNDS = Number(roundsArg);
if (!(PODS >= 1) || !(ROUNDS >= 1)) throw new Error(`pods per batch and rounds must be positive numbers: ${podsArg} ${roundsArg}`);

const ownManager = process.env['SYSRUNC_CHECK_TEST_MANAGER'] === '1' ? await startTestManager({ name: 'stack-pods' }) : undefined;
const rig = await startCriRig('stack-pods', { sysrunc: ownManager === undefined ? '/usr/local/bin/sysrunc' : TEST_SYSRUNC }, ownManager?.env ?? {}, { images: { pauseTar, appTar }, startTimeoutMs: 300_000 });
const cri = criRuntime(rig.cri);
const samples: Record<Handler, number[]> = { runc: [], sysrunc: [] };
let failed = false;
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order: Handler[] = round % 2 === 0 ? ['runc', 'sysrunc'] : ['sysrunc', 'runc'];
    for (const handler of order) {
      const t0 = performance.now();
      const settled = await Promise.allSettled(Array.from({ length: PODS }, (_, i) => startPod(cri, rig, handler, `stack-q-${handler}-${round}-${i}`)));
      const wall = performance.now() - t0;
      const pods = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      try {
        const errors = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
        if (errors.length > 0) throw new Error(`${handler}: ${errors.length}/${PODS} pods failed: ${errors[0] ?? ''}`);
        if (handler === 'sysrunc') {
          const bad = overlapping(await hostRanges(cri, pods));
          if (bad > 0) throw new Error(`sysrunc: ${bad} of ${PODS} host uid ranges overlap`);
        }
        const ms = pods.map((p) => p.ms);
        samples[handler].push(...ms);
        console.log(`round ${round + 1} ${handler}: ${PODS}/${PODS} pods up${handler === 'sysrunc' ? ', uid ranges disjoint' : ''}; p50 ${quantile(ms, 0.5).toFixed(0)} ms, p99 ${quantile(ms, 0.99).toFixed(0)} ms, batch wall ${wall.toFixed(0)} ms`);
      } finally {
        await removePods(cri, await listedPods(rig));
      }
    }
  }
} catch (err) {
  failed = true;
  console.log((err as Error).message.split('\n')[0]);
} finally {
  await rig.stop();
  await ownManager?.dispose();
}
if (!failed) {
  const q = (h: Handler, p: number): number => quantile(samples[h], p);
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  console.log(
    `${ROUNDS} round(s) of ${PODS} pods per handler: per pod p50 runc ${s(q('runc', 0.5))}, sysrunc ${s(q('sysrunc', 0.5))} (${(q('sysrunc', 0.5) / q('runc', 0.5)).toFixed(2)}x); ` +
      `p99 runc ${s(q('runc', 0.99))}, sysrunc ${s(q('sysrunc', 0.99))} (${(q('sysrunc', 0.99) / q('runc', 0.99)).toFixed(2)}x)`,
  );
}
process.exit(failed ? 1 : 0);
