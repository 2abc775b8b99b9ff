// What the load and prepare-steps runs read of their private manager: a CPU profile (optional)
// and its resident memory.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A node for bin/sysrunc-mgr (SYSRUNC_NODE) that writes a .cpuprofile into dir at its exit (node refuses --cpu-prof in NODE_OPTIONS). */
export function profilingNode(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const wrapper = path.join(dir, 'node-cpu-prof');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} --cpu-prof --cpu-prof-dir=${dir} --cpu-prof-interval=200 "$@"\n`, { mode: 0o755 });
  return wrapper;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function residentMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}
