import { createHash } from 'node:crypto';
import type { Transform } from './types.ts';

/**
 * `nproc` (and every program sizing a pool from sched_getaffinity) counts the CPUs a process may
 * run on, which a CFS quota (`docker run --cpus`, a pod's CPU limit) does not change; lxcfs's CPU
 * view only rewrites /proc/cpuinfo, /proc/stat and cpu/online. So, as LXD does for limits.cpu, a
 * system container with a quota and no cpuset of its own is given ceil(quota/period) of the host's
 * online CPUs as its cpuset: the same capacity, and every view of it agrees. Which CPUs: a
 * window starting at a place the container id picks, so containers spread over the host.
 */
export const lxcfsCpuset: Transform = {
  name: 'lxcfs-cpuset',
  apply(spec, plan) {
    const cpu = spec.linux?.resources?.cpu;
    const online = plan.lxcfs?.onlineCpus ?? [];
    if (!plan.settings.systemContainer || !plan.settings.lxcfs || plan.lxcfs === undefined || cpu === undefined) return { spec, actions: [] };
    if ((cpu.cpus ?? '') !== '' || cpu.quota === undefined || cpu.quota <= 0 || cpu.period === undefined || cpu.period <= 0) return { spec, actions: [] };
    const wanted = Math.ceil(cpu.quota / cpu.period);
    if (wanted >= online.length) return { spec, actions: [] };
    const start = createHash('sha256').update(plan.containerId).digest().readUInt32BE(0) % online.length;
    const chosen = Array.from({ length: wanted }, (_, i) => online[(start + i) % online.length] as number).sort((a, b) => a - b);
    const resources = { ...spec.linux?.resources, cpu: { ...cpu, cpus: chosen.join(',') } };
    return { spec: { ...spec, linux: { ...spec.linux, resources } }, actions: [] };
  },
};

/** "0-3,6,8-9" (the kernel's CPU list format) -> [0,1,2,3,6,8,9]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [from, to] = part.split('-').map(Number);
    if (from === undefined || !Number.isInteger(from)) continue;
    for (let c = from; c <= (to ?? from); c++) out.push(c);
  }
  return out;
}
