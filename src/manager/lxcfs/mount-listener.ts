// The per-container mount listener (src/manager/native/mount-listener.c): started at prepare (its
// socket: spec-transform/lxcfs-nested.ts's mountListenerPaths),
// detached in its own session so that it outlives a manager restart; it exits by itself once the
// container's processes are gone and its socket has been removed (removeMountListener, at release).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { ServiceError } from '../service-error.ts';
import { removeRunEntry } from '../remove-run-entry.ts';
import { mountListenerFiles, mountListenerPaths } from '../../spec-transform/lxcfs-nested.ts';

/** Starts the listener on <run-dir>/mount-listener/listener.sock; resolves once it listens. */
export async function startMountListener(binary: string, runDir: string, files: readonly { readonly destination: string; readonly source: string }[]): Promise<void> {
  const paths = mountListenerPaths(runDir);
  mkdirSync(paths.dir, { mode: 0o700 });
  mkdirSync(paths.socketDir, { mode: 0o700, recursive: true });
  const log = openSync(paths.log, 'a', 0o600);
  try {
    const child = spawn(binary, [paths.socket, ...mountListenerFiles(files)], { detached: true, stdio: ['ignore', log, log, 'pipe'] });
    const report = child.stdio[3] as Readable;
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      report.setEncoding('utf8');
      report.on('data', (chunk: string) => (text += chunk));
      report.on('close', () => resolve(text.trim()));
      child.on('error', (err) => resolve(`error ${err.message}`));
    });
    child.unref();
    if (answer !== 'ok') throw new ServiceError('host-action-failed', `mount listener ${path.basename(binary)}: ${answer === '' ? `exited without a report (see ${paths.log})` : answer.replace(/^error /, '')}`);
  } finally {
    closeSync(log);
  }
}

/** Removes the listener's socket (it then exits when the container's processes are gone) and log. */
export function removeMountListener(runDir: string): void {
  const paths = mountListenerPaths(runDir);
  removeRunEntry(paths.socket, 'file');
  removeRunEntry(paths.log, 'file');
  removeRunEntry(paths.dir, 'dir');
}
