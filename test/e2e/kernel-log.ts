// The kernel log (/dev/kmsg) since a point in time: overlayfs reports two live overlays over one
// upper or work dir there ("upperdir is in-use as upperdir/workdir of another mount", the same for
// workdir), and nowhere else. Issue 25: no e2e run may leave that line. Its third form, "lowerdir is
// in-use", is not checked: it also comes from dockerd's own mounts racing any mount namespace made
// while they are up (dockerd mounts a container's -init layer, unmounts it, then mounts the
// container's layer over it; a namespace cloned in between, runc's own included, holds a copy of
// the first mount until it detaches it), which 50 concurrent runs hit about once in three runs. A
// DinD store volume below the upper dir (the case that form caught) also draws upperdir lines.
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';

export const SHARED_UPPER_WARNING = /overlayfs: (upperdir|workdir) is in-use as upperdir\/workdir of another mount/;

interface KmsgRecord {
  seq: number;
  /** Microseconds since boot (the kernel's clock, as /proc/uptime counts it while nothing sleeps). */
  usec: number;
  text: string;
}

/** Every record still in the kernel's ring buffer, oldest first. */
function readKmsg(): KmsgRecord[] {
  const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  const out: KmsgRecord[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break; // the end of the buffer
        if (code === 'EPIPE') continue; // records overwritten while reading: go on with the next
        throw err;
      }
      // "<prio>,<seq>,<usec>,<flags>;<text>\n" followed by continuation lines.
      const record = buf.subarray(0, n).toString('utf8');
      const semi = record.indexOf(';');
      const [, seq, usec] = record.slice(0, semi).split(',');
      out.push({ seq: Number(seq), usec: Number(usec), text: record.slice(semi + 1).split('\n')[0] ?? '' });
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The sequence number of the newest record: lines after it are "since now". */
export function kernelLogMark(): number {
  return readKmsg().at(-1)?.seq ?? -1;
}

/** Kernel log lines after mark that match pattern. */
export function kernelLogSince(mark: number, pattern: RegExp): string[] {
  return warningsSince(mark, pattern).map((r) => r.text);
}

function warningsSince(mark: number, pattern: RegExp): KmsgRecord[] {
  return readKmsg().filter((r) => r.seq > mark && pattern.test(r.text));
}

/** The wall-clock time (ms since the epoch) of a kernel log record. */
function wallClockMs(record: KmsgRecord): number {
  const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  return Date.now() - uptimeMs + record.usec / 1000;
}

/**
 * What the manager logged within 300 ms of t (its pino lines: time, msg, id), so a warning names
 * the containers whose swap was near it; '' without a log.
 */
function managerEventsNear(managerLog: string, t: number): string {
  const near: string[] = [];
  for (const line of managerLog.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { time?: number; msg?: string; id?: string };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (entry.time === undefined || Math.abs(entry.time - t) > 300) continue;
    near.push(`${entry.time - Math.round(t) >= 0 ? '+' : ''}${entry.time - Math.round(t)} ms ${entry.msg ?? ''}${entry.id === undefined ? '' : ` ${entry.id.slice(0, 12)}`}`);
  }
  return near.slice(0, 12).join('; ');
}

/**
 * Throws naming the lines when overlayfs warned about a shared upper or work dir since mark; with
 * the manager's log, also what it was doing around the first warning.
 */
export function assertNoSharedUpperWarning(mark: number, what: string, managerLog?: string): void {
  const records = warningsSince(mark, SHARED_UPPER_WARNING);
  if (records.length === 0) return;
  const first = records[0] as KmsgRecord;
  const near = managerLog === undefined ? '' : managerEventsNear(managerLog, wallClockMs(first));
  throw new Error(
    `${what}: the kernel warned ${records.length} time(s) about two overlays over one upper/work dir (issue 25), e.g. "${first.text}"` +
      (near === '' ? '' : `; the manager around it: ${near}`),
  );
}
