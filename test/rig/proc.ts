// Small process/mount helpers shared by the daemon launchers.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL. Resolves once the pid is gone (or a zombie). */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  try {
    await waitUntil(`pid ${pid} to exit`, () => !pidAlive(pid), graceMs);
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitUntil(`pid ${pid} to die after SIGKILL`, () => !pidAlive(pid), 5000);
  }
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Mount points (in mountinfo order) at or below any of the given directories. */
export function mountsUnder(dirs: readonly string[]): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const mp = unescapeMountPath(field);
    if (dirs.some((d) => mp === d || mp.startsWith(`${d}/`))) out.push(mp);
  }
  return out;
}

export interface ProcInfo {
  pid: number;
  argv: string[];
}

/** Processes whose command line mentions any of the needles (e.g. a private socket path). */
export function processesMentioning(needles: readonly string[]): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = readdirNumeric('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let raw: string;
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (raw === '' || !needles.some((n) => raw.includes(n))) continue;
    if (!pidAlive(pid)) continue;
    out.push({ pid, argv: raw.split('\0').filter((a) => a !== '') });
  }
  return out;
}

function readdirNumeric(dir: string): string[] {
  return readdirSync(dir).filter((e) => /^\d+$/.test(e));
}
