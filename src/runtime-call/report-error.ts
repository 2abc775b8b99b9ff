// runc prints a fatal error on stderr and, with --log, appends it to the log file; containerd
// reports the last `"level":"error"` message of a json log as "OCI runtime create failed: <msg>".
// The messages are made here as writes (text, and the log file it goes to or stderr), so that the
// manager can make them for the C client (manager/prepare-call.ts), which only carries them out.
import { appendFileSync, writeSync } from 'node:fs';
import type { LogFormat } from '../oci/invocation.ts';
import { oneLine } from '../common/errors.ts';

export interface LogTarget {
  readonly log: string | undefined;
  readonly logFormat: LogFormat;
}

/** One write of a message: appended to `file` (the caller's --log, as given), or to stderr. */
export interface MessageWrite {
  readonly text: string;
  readonly file?: string;
}

export function formatLogLine(level: 'error' | 'warning' | 'info', msg: string, format: LogFormat, now = new Date()): string {
  const time = now.toISOString();
  if (format === 'json') return `${JSON.stringify({ level, msg, time })}\n`;
  // logrus's text formatter, as runc writes it.
  return `time=${JSON.stringify(time)} level=${level} msg=${JSON.stringify(msg)}\n`;
}

/** An error: the log line (if there is a log file), then the stderr line. */
export function errorWrites(err: unknown, target: LogTarget): MessageWrite[] {
  const msg = oneLine(err);
  return [...logWrite('error', msg, target), { text: `sysrunc: ${msg}\n` }];
}

export function warningWrites(msg: string, target: LogTarget): MessageWrite[] {
  return [...logWrite('warning', msg, target), { text: `sysrunc: warning: ${msg}\n` }];
}

export function reportError(err: unknown, target: LogTarget): void {
  perform(errorWrites(err, target));
}

export function reportWarning(msg: string, target: LogTarget): void {
  perform(warningWrites(msg, target));
}

function logWrite(level: 'error' | 'warning', msg: string, target: LogTarget): MessageWrite[] {
  if (target.log === undefined || target.log === '/dev/stderr' || target.log === '/proc/self/fd/2') return [];
  return [{ text: formatLogLine(level, `sysrunc: ${msg}`, target.logFormat), file: target.log }];
}

function perform(writes: readonly MessageWrite[]): void {
  for (const w of writes) {
    if (w.file === undefined) {
      writeStderr(w.text);
      continue;
    }
    try {
      appendFileSync(w.file, w.text, { mode: 0o644 });
    } catch {
      // An unwritable log must not hide the error itself, which still goes to stderr.
    }
  }
}

/** Straight to fd 2: process.stderr would switch a pipe to non-blocking mode, which runc inherits. */
export function writeStderr(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // stderr closed: nothing else can be done.
  }
}
