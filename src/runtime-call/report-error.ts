// runc prints a fatal error on stderr and, with --log, appends it to the log file; containerd
// reports the last `"level":"error"` message of a json log as "OCI runtime create failed: <msg>".
import { appendFileSync, writeSync } from 'node:fs';
import type { LogFormat } from '../oci/invocation.ts';
import { oneLine } from '../common/errors.ts';

export interface LogTarget {
  readonly log: string | undefined;
  readonly logFormat: LogFormat;
}

export function formatLogLine(level: 'error' | 'warning' | 'info', msg: string, format: LogFormat, now = new Date()): string {
  const time = now.toISOString();
  if (format === 'json') return `${JSON.stringify({ level, msg, time })}\n`;
  // logrus's text formatter, as runc writes it.
  return `time=${JSON.stringify(time)} level=${level} msg=${JSON.stringify(msg)}\n`;
}

export function reportError(err: unknown, target: LogTarget): void {
  const msg = oneLine(err);
  writeLog('error', msg, target);
  writeStderr(`sysrunc: ${msg}\n`);
}

export function reportWarning(msg: string, target: LogTarget): void {
  writeLog('warning', msg, target);
  writeStderr(`sysrunc: warning: ${msg}\n`);
}

function writeLog(level: 'error' | 'warning', msg: string, target: LogTarget): void {
  if (target.log === undefined || target.log === '/dev/stderr' || target.log === '/proc/self/fd/2') return;
  try {
    appendFileSync(target.log, formatLogLine(level, `sysrunc: ${msg}`, target.logFormat), { mode: 0o644 });
  } catch {
    // An unwritable log must not hide the error itself, which still goes to stderr.
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
